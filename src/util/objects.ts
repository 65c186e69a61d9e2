// What a listing says of one stored object, shared by the S3 adapter that lists and the
// backup planning that compares listings.

export interface ObjectInfo {
  /** The ETag without quotes. */
  etag: string;
  size: number;
}

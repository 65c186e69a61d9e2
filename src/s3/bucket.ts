// An S3 bucket over @aws-sdk/client-s3: a paginated listing as an index (key → ETag, size),
// object downloads, and errors that name the endpoint and bucket, never the keys.

import https from "node:https";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { registerSecret } from "../util/redact.js";
import type { ObjectInfo } from "../util/objects.js";
import { mapLimit } from "../util/pool.js";
import { s3EndpointUrl } from "../util/url.js";

export interface S3Credentials {
  accessKey: string;
  secretKey: string;
  caCert?: string;
}

export interface BucketLocation {
  endpoint: string;
  bucket: string;
  region?: string;
  insecure?: boolean;
  forcePathStyle?: boolean;
}

export type BucketIndex = Map<string, ObjectInfo>;

const LIST_CONCURRENCY = 8;

/** The AWS SDK, loaded on first use: about 34 MiB of RSS that a process reading no bucket never holds. */
let sdkLoading: Promise<[typeof import("@aws-sdk/client-s3"), typeof import("@smithy/node-http-handler")]> | undefined;
const sdk = (): NonNullable<typeof sdkLoading> => (sdkLoading ??= Promise.all([import("@aws-sdk/client-s3"), import("@smithy/node-http-handler")]));

export class S3Error extends Error {
  constructor(
    readonly kind: "auth" | "not-found" | "no-such-key" | "network",
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = "S3Error";
  }
}

/** Reads a Secret's accesskey/secretkey (and ca.crt), registering them for redaction. */
export function s3CredentialsFromSecret(data: Record<string, string>, secretName: string): S3Credentials {
  const accessKey = data.accesskey;
  const secretKey = data.secretkey;
  if (!accessKey || !secretKey) throw new Error(`Secret ${secretName} must hold accesskey and secretkey`);
  registerSecret(accessKey);
  registerSecret(secretKey);
  return { accessKey, secretKey, caCert: data["ca.crt"] };
}

export class Bucket {
  readonly stats = { listRequests: 0, downloads: 0 };
  private client: S3Client | undefined;
  private readonly endpoint: string;
  private readonly where: string;

  constructor(
    readonly location: BucketLocation,
    private readonly credentials: S3Credentials,
  ) {
    this.endpoint = s3EndpointUrl(location.endpoint, location.insecure);
    this.where = `s3 bucket ${location.bucket} at ${this.endpoint}`;
  }

  /** Sends one command, built from the SDK's command classes once they are loaded. */
  private async send<T>(build: (s3: typeof import("@aws-sdk/client-s3")) => object, signal?: AbortSignal): Promise<T> {
    const [s3, smithy] = await sdk();
    this.client ??= new s3.S3Client({
      endpoint: this.endpoint,
      region: this.location.region ?? "us-east-1",
      forcePathStyle: this.location.forcePathStyle ?? true,
      credentials: { accessKeyId: this.credentials.accessKey, secretAccessKey: this.credentials.secretKey },
      maxAttempts: 2,
      requestHandler: new smithy.NodeHttpHandler({
        connectionTimeout: 5_000,
        requestTimeout: 60_000,
        httpsAgent: new https.Agent({ keepAlive: true, ...(this.credentials.caCert ? { ca: this.credentials.caCert } : {}) }),
      }),
    });
    // Each command's own output type is T; the union the client is typed over hides it.
    return this.client.send(build(s3) as never, { abortSignal: signal }) as Promise<T>;
  }

  /**
   * Every object under the prefix. A delimiter query finds the top-level folders (the
   * clusters, in a backup bucket); each is then listed to the end concurrently, so a large
   * bucket costs a few page round trips rather than one per thousand keys in sequence.
   */
  async list(prefix: string, signal?: AbortSignal, onPage?: (listed: number) => void): Promise<BucketIndex> {
    const index: BucketIndex = new Map();
    const top = await this.listAll(prefix, "/", index, signal, onPage);
    await mapLimit(top, LIST_CONCURRENCY, (folder) => this.listAll(folder, undefined, index, signal, onPage));
    return index;
  }

  /** Lists one prefix to the end into `index`; returns the common prefixes when a delimiter is given. */
  private async listAll(
    prefix: string,
    delimiter: string | undefined,
    index: BucketIndex,
    signal?: AbortSignal,
    onPage?: (listed: number) => void,
  ): Promise<string[]> {
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      this.stats.listRequests += 1;
      const page = await this.guard("list", () =>
        this.send<import("@aws-sdk/client-s3").ListObjectsV2CommandOutput>(
          (s3) => new s3.ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken: token, MaxKeys: 1000 }),
          signal,
        ),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key && !object.Key.endsWith("/")) index.set(object.Key, { etag: (object.ETag ?? "").replace(/"/g, ""), size: object.Size ?? 0 });
      }
      for (const common of page.CommonPrefixes ?? []) if (common.Prefix) prefixes.push(common.Prefix);
      onPage?.(index.size);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return prefixes;
  }

  async get(key: string, signal?: AbortSignal): Promise<Uint8Array> {
    this.stats.downloads += 1;
    const response = await this.guard(`download ${key} from`, () =>
      this.send<import("@aws-sdk/client-s3").GetObjectCommandOutput>((s3) => new s3.GetObjectCommand({ Bucket: this.location.bucket, Key: key }), signal),
    );
    if (!response.Body) throw new S3Error("network", `empty body for ${key} from ${this.where}`);
    return response.Body.transformToByteArray();
  }

  /** Every key under the prefix, every page, with no delimiter (keys that hold "/" are not folders). */
  async listKeys(prefix: string, signal?: AbortSignal): Promise<BucketIndex> {
    const index: BucketIndex = new Map();
    await this.listAll(prefix, undefined, index, signal);
    return index;
  }

  /** An object's body as a stream, and its user metadata (x-amz-meta-*). */
  async open(key: string, signal?: AbortSignal): Promise<{ body: ReadableStream<Uint8Array>; metadata: Record<string, string>; size: number }> {
    this.stats.downloads += 1;
    const response = await this.guard(`download ${key} from`, () =>
      this.send<import("@aws-sdk/client-s3").GetObjectCommandOutput>((s3) => new s3.GetObjectCommand({ Bucket: this.location.bucket, Key: key }), signal),
    );
    if (!response.Body) throw new S3Error("network", `empty body for ${key} from ${this.where}`);
    return { body: response.Body.transformToWebStream() as ReadableStream<Uint8Array>, metadata: response.Metadata ?? {}, size: response.ContentLength ?? 0 };
  }

  /** Uploads a file's bytes (streamed) with user metadata. */
  async putFile(key: string, file: string, metadata: Record<string, string> = {}, signal?: AbortSignal): Promise<void> {
    const { size } = await stat(file);
    await this.guard(`upload ${key} to`, () =>
      this.send(
        (s3) => new s3.PutObjectCommand({ Bucket: this.location.bucket, Key: key, Body: createReadStream(file), ContentLength: size, Metadata: metadata }),
        signal,
      ),
    );
  }

  async remove(key: string, signal?: AbortSignal): Promise<void> {
    await this.guard(`delete ${key} from`, () => this.send((s3) => new s3.DeleteObjectCommand({ Bucket: this.location.bucket, Key: key }), signal));
  }

  close(): void {
    this.client?.destroy();
  }

  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // An S3ServiceException (matched by shape: the SDK's class is loaded lazily).
      if (isServiceException(err)) {
        const status = err.$metadata.httpStatusCode ?? 0;
        // versitygw answers an unknown access key with XAdminUserNotFound and HTTP 404, not 403.
        if (status === 401 || status === 403 || /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|XAdminUserNotFound/.test(err.name)) {
          throw new S3Error("auth", `access denied to ${this.where} (${err.name}): check accesskey and secretkey in the Secret`, err);
        }
        if (err.name === "NoSuchKey") throw new S3Error("no-such-key", `failed to ${what} ${this.where}: no such key (listed, then not found)`, err);
        if (err.name === "NoSuchBucket" || status === 404) throw new S3Error("not-found", `${this.where} not found (${err.name})`, err);
        throw new S3Error("network", `failed to ${what} ${this.where}: ${err.name} (HTTP ${status})`, err);
      }
      const code = (err as { code?: string }).code ?? (err as Error).name;
      throw new S3Error("network", `failed to ${what} ${this.where}: ${code} ${(err as Error).message}`, err);
    }
  }
}

function isServiceException(err: unknown): err is Error & { $metadata: { httpStatusCode?: number } } {
  return err instanceof Error && typeof (err as { $metadata?: unknown }).$metadata === "object" && (err as { $fault?: unknown }).$fault !== undefined;
}

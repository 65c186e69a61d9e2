// The S3 server of the environment (versitygw) with @aws-sdk/client-s3: pagination, ETags
// and multipart uploads behave as the backup engine relies on.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Bucket } from "../../src/s3/bucket.js";
import { adminS3, env } from "./setup.js";

describe("S3 server (versitygw) with the AWS SDK", function () {
  let s3: S3Client;
  const name = "s3-conformance";

  before(async () => {
    s3 = adminS3();
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  });
  after(() => s3.destroy());

  it("pages a listing of 2,500 keys with continuation tokens", async () => {
    // Two folders and a top-level file: the listing fans out per folder and pages within each.
    const keys = Array.from({ length: 2500 }, (_, i) =>
      i === 0 ? "paged/top.yaml" : `paged/${i % 2 ? "east" : "west"}/${String(i).padStart(5, "0")}.yaml`,
    ).sort();
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(keys.slice(i, i + 100).map((Key) => s3.send(new PutObjectCommand({ Bucket: name, Key, Body: `n: ${Key}\n` }))));
    }
    const bucket = new Bucket({ endpoint: env().s3.endpoint, bucket: name }, { accessKey: env().s3.accessKey, secretKey: env().s3.secretKey });
    try {
      const index = await bucket.list("paged/");
      assert.equal(index.size, 2500);
      // One delimiter query, then east (1,250 keys: 2 pages) and west (1,249 keys: 2 pages).
      assert.equal(bucket.stats.listRequests, 5, "1,000 keys a page");
      assert.deepEqual([...index.keys()].sort(), keys);
    } finally {
      bucket.close();
    }
  });

  it("gives a single-part object the MD5 of its bytes as ETag, and changes it when the bytes change", async () => {
    const body = "kind: ConfigMap\n";
    await s3.send(new PutObjectCommand({ Bucket: name, Key: "etag.yaml", Body: body }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: name, Key: "etag.yaml" }));
    assert.equal(head.ETag?.replace(/"/g, ""), createHash("md5").update(body).digest("hex"));
    await s3.send(new PutObjectCommand({ Bucket: name, Key: "etag.yaml", Body: `${body}# changed\n` }));
    const after = await s3.send(new HeadObjectCommand({ Bucket: name, Key: "etag.yaml" }));
    assert.notEqual(after.ETag, head.ETag);
  });

  it("completes a multipart upload with a multipart ETag and the original bytes", async () => {
    const part = (fill: string): Buffer => Buffer.alloc(5 * 1024 * 1024, fill);
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: name, Key: "big.bin" }));
    const parts = [];
    for (const [i, fill] of ["a", "b"].entries()) {
      const { ETag } = await s3.send(new UploadPartCommand({ Bucket: name, Key: "big.bin", UploadId, PartNumber: i + 1, Body: part(fill) }));
      parts.push({ ETag, PartNumber: i + 1 });
    }
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: name, Key: "big.bin", UploadId, MultipartUpload: { Parts: parts } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: name, Key: "big.bin" }));
    assert.match(head.ETag ?? "", /-2"?$/, "multipart ETags end in -<parts>");
    const got = await s3.send(new GetObjectCommand({ Bucket: name, Key: "big.bin" }));
    const bytes = Buffer.from(await (got.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray());
    assert.ok(bytes.equals(Buffer.concat([part("a"), part("b")])));
  });
});

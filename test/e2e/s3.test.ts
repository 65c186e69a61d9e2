// The S3 servers (the environment's versitygw, and MinIO through testcontainers), with
// @aws-sdk/client-s3 as a reference client: pagination, ETags and multipart uploads behave as
// the backup engine relies on; the engine's own client (src/s3/bucket.ts) writes and reads what
// the SDK does; and where the two servers differ (error codes), the engine reads both the same way.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { Bucket } from "../../src/s3/bucket.js";
import { eachS3Server, s3Client, type S3Server } from "./s3-servers.js";

eachS3Server(
  (name) => `S3 server (${name}) with the AWS SDK`,
  (server, serverName) => {
    let s3: S3Client;
    const name = "s3-conformance";

    before(async () => {
      s3 = s3Client(server());
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
      const bucket = new Bucket({ endpoint: server().endpoint, bucket: name }, { accessKey: server().accessKey, secretKey: server().secretKey });
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
      // The ETag S3 gives: the MD5 of the parts' binary MD5s, then -<parts>.
      const partsMd5 = createHash("md5")
        .update(Buffer.concat(["a", "b"].map((fill) => createHash("md5").update(part(fill)).digest())))
        .digest("hex");
      assert.equal(head.ETag?.replace(/"/g, ""), `${partsMd5}-2`);
      const got = await s3.send(new GetObjectCommand({ Bucket: name, Key: "big.bin" }));
      const bytes = Buffer.from(await (got.Body as { transformToByteArray: () => Promise<Uint8Array> }).transformToByteArray());
      assert.ok(bytes.equals(Buffer.concat([part("a"), part("b")])));
    });

    it("answers wrong credentials and a missing bucket with its own error codes, which the engine reads as one", async () => {
      // What each server answers; the engine must make the same clear error of either.
      const expected: Record<S3Server["name"], { wrongSecret: string; unknownKey: string; missingBucket: string }> = {
        versitygw: { wrongSecret: "SignatureDoesNotMatch", unknownKey: "XAdminUserNotFound", missingBucket: "NoSuchBucket" },
        MinIO: { wrongSecret: "SignatureDoesNotMatch", unknownKey: "InvalidAccessKeyId", missingBucket: "NoSuchBucket" },
      };
      const nameOf = async (credentials: { accessKey: string; secretKey: string }, bucket: string): Promise<string> => {
        const client = s3Client({ ...server(), ...credentials });
        try {
          await client.send(new ListObjectsV2Command({ Bucket: bucket }));
          return "no error";
        } catch (err) {
          return (err as Error).name;
        } finally {
          client.destroy();
        }
      };
      const wrongSecret = { accessKey: server().accessKey, secretKey: "wrong-secret-0000" };
      const unknownKey = { accessKey: "nobody-here", secretKey: server().secretKey };
      assert.deepEqual(
        {
          wrongSecret: await nameOf(wrongSecret, name),
          unknownKey: await nameOf(unknownKey, name),
          missingBucket: await nameOf(server(), "no-such-bucket-here"),
        },
        expected[serverName],
      );
      for (const [credentials, kind, pattern] of [
        [wrongSecret, "auth", /access denied to s3 bucket s3-conformance at http:\/\/127\.0\.0\.1:\d+ \(\w+\): check accesskey and secretkey/],
        [unknownKey, "auth", /access denied to s3 bucket s3-conformance/],
      ] as const) {
        const bucket = new Bucket({ endpoint: server().endpoint, bucket: name }, credentials);
        try {
          await assert.rejects(bucket.list(""), (err: Error & { kind?: string }) => {
            assert.equal(err.kind, kind);
            assert.match(err.message, pattern);
            assert.ok(!err.message.includes(credentials.secretKey), "no secret in the message");
            return true;
          });
        } finally {
          bucket.close();
        }
      }
      const missing = new Bucket({ endpoint: server().endpoint, bucket: "no-such-bucket-here" }, server());
      try {
        await assert.rejects(missing.list(""), /s3 bucket no-such-bucket-here at \S+ not found \(NoSuchBucket\)/);
      } finally {
        missing.close();
      }
    });

    it("takes keys of any characters and user metadata through the engine's client (signed by aws4) and back", async () => {
      const keys = ["odd/a b+c&d=e'(x)*!~.yaml", "odd/ünïcødé 日本.yaml", "odd/ spaced .yaml", "odd/007", "odd/semi;colon,comma@at$dollar#hash%25pct"];
      const dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-s3-"));
      const file = path.join(dir, "body.bin");
      writeFileSync(file, Buffer.alloc(300_000, "z"));
      const bucket = new Bucket({ endpoint: server().endpoint, bucket: name }, { accessKey: server().accessKey, secretKey: server().secretKey });
      try {
        for (const key of keys) await bucket.putFile(key, file, { "gitsync-signature": `sig-${key.length}` });
        const listed = await bucket.listKeys("odd/");
        assert.deepEqual([...listed.keys()].sort(), [...keys].sort(), "every key listed as it was written");
        for (const key of keys) {
          assert.equal(listed.get(key)?.size, 300_000);
          assert.equal(listed.get(key)?.etag, createHash("md5").update(readFileSync(file)).digest("hex"));
          const opened = await bucket.open(key);
          assert.deepEqual(opened.metadata, { "gitsync-signature": `sig-${key.length}` });
          assert.equal(opened.size, 300_000);
          assert.ok(Buffer.from(await new Response(opened.body).arrayBuffer()).equals(readFileSync(file)));
          assert.equal((await bucket.get(key)).byteLength, 300_000);
          // The SDK reads back what this client wrote.
          const head = await s3.send(new HeadObjectCommand({ Bucket: name, Key: key }));
          assert.equal(head.ContentLength, 300_000);
        }
        for (const key of keys) await bucket.remove(key);
        assert.equal((await bucket.listKeys("odd/")).size, 0);
        await assert.rejects(bucket.get(keys[0] as string), (err: Error & { kind?: string }) => err.kind === "no-such-key");
      } finally {
        bucket.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("caps a listing page at 1,000 keys whatever MaxKeys asks", async () => {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: name, Prefix: "paged/east/", MaxKeys: 5000 }));
      assert.equal(page.KeyCount, 1000);
      assert.equal(page.IsTruncated, true);
      assert.ok(page.NextContinuationToken);
    });
  },
);

// The file system isomorphic-git writes through: node's, except that writeFile is atomic
// (a temp file, then rename). A process killed mid-write then never leaves a truncated
// object, pack or ref behind, which a later run would trust because the path exists.

import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";

async function atomicWriteFile(file: string, data: string | Uint8Array, options?: Parameters<typeof fsp.writeFile>[2]): Promise<void> {
  const temp = `${file}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await fsp.writeFile(temp, data, options);
    await fsp.rename(temp, file);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
}

export const gitFs = { promises: { ...fsp, writeFile: atomicWriteFile } };

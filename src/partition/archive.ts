// The tarball of the wire format: a gzip-compressed tar of a non-bare clone, regular files
// only, no directory entries, paths relative to the repository root. Extraction checks every
// entry before anything is written: no absolute path, no "..", no link that leaves the
// folder, no device or FIFO, and no more than a set number of uncompressed bytes.

import { createReadStream } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { ReadEntry } from "tar";
import { tar } from "../util/lazy.js";

export const DEFAULT_MAX_EXTRACT_BYTES = 2 * 1024 ** 3;

/** An archive that must not be extracted; names the entry. */
export class ExtractRejected extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = "ExtractRejected";
  }
}

/** Every regular file below dir, relative, sorted (so equal trees give equal archives). */
export async function regularFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, folder), { withFileTypes: true })) {
      const rel = folder ? `${folder}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(rel);
      else if (entry.isFile()) out.push(rel);
    }
  };
  await walk("");
  return out.sort();
}

/** Writes dir as the wire format's .tar.gz. */
export async function createTarball(dir: string, file: string): Promise<void> {
  await tar().create({ gzip: true, cwd: dir, file, portable: true, noDirRecurse: true }, await regularFiles(dir));
}

type EntryType = ReadEntry["type"];

const ALLOWED: ReadonlySet<EntryType> = new Set<EntryType>(["File", "OldFile", "ContiguousFile", "Directory", "SymbolicLink", "Link"]);

/** Why an entry may not be written, or undefined. */
export function entryProblem(entryPath: string, type: EntryType, linkpath: string | undefined): string | undefined {
  const segments = entryPath.split(/[\\/]+/);
  if (path.posix.isAbsolute(entryPath) || /^[a-zA-Z]:/.test(entryPath)) return `absolute path ${entryPath}`;
  if (segments.includes("..")) return `path ${entryPath} leaves the folder`;
  if (!ALLOWED.has(type)) return `${entryPath} is a ${type}, not a file`;
  if (type === "SymbolicLink" || type === "Link") {
    const target = type === "SymbolicLink" ? path.posix.join(path.posix.dirname(entryPath), linkpath ?? "") : (linkpath ?? "");
    if (!linkpath || path.posix.isAbsolute(linkpath) || path.posix.normalize(target).split("/")[0] === "..")
      return `link ${entryPath} → ${linkpath} leaves the folder`;
  }
  return undefined;
}

/** Checks every entry of a .tar.gz file; throws ExtractRejected at the first problem (stopping a decompression bomb early). */
export async function checkTarball(file: string, maxBytes = DEFAULT_MAX_EXTRACT_BYTES): Promise<{ files: number; bytes: number }> {
  let bytes = 0;
  let files = 0;
  let problem: string | undefined;
  const source = createReadStream(file);
  const parser = new (tar().Parser)({
    strict: true,
    onReadEntry: (entry) => {
      problem ??= entryProblem(entry.path, entry.type, entry.linkpath);
      bytes += entry.size ?? 0;
      if (!problem && bytes > maxBytes) problem = `more than ${maxBytes} bytes uncompressed`;
      files += 1;
      if (problem) source.destroy(new ExtractRejected(problem));
      entry.resume();
    },
  });
  try {
    await pipeline(source, parser);
  } catch (err) {
    if (problem) throw new ExtractRejected(problem);
    throw new ExtractRejected(`not a gzip-compressed tar: ${(err as Error).message}`);
  }
  if (problem) throw new ExtractRejected(problem);
  return { files, bytes };
}

/** Extracts a .tar.gz that checkTarball accepted. */
export async function extractTarball(file: string, dir: string, maxBytes = DEFAULT_MAX_EXTRACT_BYTES): Promise<void> {
  await checkTarball(file, maxBytes);
  await tar().extract({ file, cwd: dir, strict: true, preservePaths: false, noChmod: true });
}

// Properties of every parser and codec, over generated input (fast-check): nothing but the
// domain's own error type is thrown, and its message names the field or the file; what is
// written reads back the same; limits hold.

import assert from "node:assert/strict";
import fc from "fast-check";
import { stringify } from "yaml";
import { parseIndex, renderIndex, type Index } from "../../src/backup/plan.js";
import { interpolate, interpolateString, InterpolationError } from "../../src/compose/interpolate.js";
import { ComposeInvalidError, loadProject } from "../../src/compose/project.js";
import { FolderFiles } from "../../src/compose/files.js";
import { advertKey, parseAdvert } from "../../src/dataset/advert.js";
import { ConfigError, parseOldConfig } from "../../src/dataset/config.js";
import { parseBundle } from "../../src/git/bundle.js";
import { keysFor } from "../../src/git/known-hosts.js";
import { versionAgrees } from "../../src/handshake/check.js";
import { ManifestError, parseService } from "../../src/handshake/manifests.js";
import { entryProblem } from "../../src/partition/archive.js";
import { decodeKey, encodeKey, KeyError, type ObjectKey } from "../../src/partition/key.js";
import { formatDuration, parseDuration } from "../../src/util/duration.js";
import { parseGitUrl, repoUnder } from "../../src/util/giturl.js";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const RUNS = { numRuns: 300 };

/** Runs `fn`; passes when it returns, or throws an instance of `allowed` whose message matches `names`. */
function onlyThrows(fn: () => unknown, allowed: abstract new (...args: never[]) => Error, names?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof allowed, `threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    if (names) assert.match(err.message, names);
  }
}

/** Text that looks like YAML often enough to reach past the parser: documents of anything, and raw strings. */
const yamlText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.anything({ maxDepth: 4 }).map((v) => String(stringify(v) ?? "")),
  fc
    .dictionary(fc.constantFrom("metadata", "desiredState", "version", "services", "apiSpec", "dependencies"), fc.anything({ maxDepth: 3 }))
    .map((v) => String(stringify(v) ?? "")),
);

/** A YAML alias bomb: each level doubles the one before. */
const aliasBomb = (levels: number): string =>
  [
    "a0: &a0 [x, x]",
    ...Array.from({ length: levels }, (_, i) => `a${i + 1}: &a${i + 1} [*a${i}, *a${i}, *a${i}, *a${i}]`),
    `metadata: {name: *a${levels}}`,
  ].join("\n");

describe("properties: durations", () => {
  it("reads back every duration it formats, to the second", () =>
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), (seconds) => assert.equal(parseDuration(formatDuration(seconds * 1000)), seconds * 1000)),
      RUNS,
    ));
  it("throws only 'invalid duration', naming the text, on anything else", () =>
    fc.assert(
      fc.property(fc.string(), (text) => onlyThrows(() => parseDuration(text), Error, /^invalid duration "/)),
      RUNS,
    ));
});

describe("properties: compose interpolation and projects", () => {
  it("throws only InterpolationError naming the field", () =>
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.dictionary(fc.stringMatching(/^[A-Z_]{1,4}$/), fc.string({ maxLength: 10 })), (text, vars) =>
        onlyThrows(() => interpolateString(text, vars, "services.web.environment.X"), InterpolationError, /^services\.web\.environment\.X: /),
      ),
      RUNS,
    ));
  it("reads $$ as a literal $: escaping every $ gives the text back", () =>
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) =>
        assert.equal(
          interpolateString(
            text.replaceAll("$", () => "$$"),
            {},
            "f",
          ),
          text,
        ),
      ),
      RUNS,
    ));
  it("leaves text without $ alone, inside any structure", () =>
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
        const clean = JSON.parse(JSON.stringify(value).replaceAll("$", "")) as unknown;
        assert.deepEqual(interpolate(clean, {}), clean);
      }),
      RUNS,
    ));
  it("refuses any compose file only with ComposeInvalidError naming the file", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-prop-compose-"));
    await fc.assert(
      fc.asyncProperty(fc.oneof(yamlText, fc.constant(aliasBomb(12))), async (text) => {
        writeFileSync(path.join(dir, "compose.yaml"), text);
        try {
          await loadProject(new FolderFiles(dir), {});
        } catch (err) {
          assert.ok(err instanceof ComposeInvalidError, `threw ${(err as Error).name}: ${(err as Error).message}`);
          assert.match(err.message, /compose\.yaml/);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("properties: handshake manifests and versions", () => {
  it("refuses any service.yaml, contract.yaml or interface.yaml only with ManifestError naming the source and file", () =>
    fc.assert(
      fc.property(yamlText, fc.constantFrom("service", "contract", "interface"), (text, which) => {
        const files = { source: "repo-x", service: which === "service" ? text : "metadata: {name: a}", [which]: text };
        onlyThrows(() => parseService(files), ManifestError, new RegExp(`^repo-x: ${which}\\.yaml`));
      }),
      RUNS,
    ));
  it("holds the alias limit: an alias bomb is a ManifestError, not an exhausted process", () => {
    for (const levels of [8, 12, 20]) onlyThrows(() => parseService({ source: "bomb", service: aliasBomb(levels) }), ManifestError, /^bomb: service\.yaml/);
  });
  it("compares any two version texts without throwing", () =>
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.constantFrom("strict" as const, "relaxed" as const), (a, b, mode) => void versionAgrees(a, b, mode)),
      RUNS,
    ));
});

describe("properties: partition keys, archives and bundles", () => {
  // GitLab's path names, and branch names git accepts.
  const segment = fc.stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_-]{0,19}$/);
  const sha = fc.stringMatching(/^[0-9a-f]{40}$/);
  const key: fc.Arbitrary<ObjectKey> = fc
    .record({
      group: fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/")),
      projectName: segment,
      commitSha: sha,
      localBranch: segment,
      remoteBranch: segment,
      format: fc.constantFrom("Tarball" as const, "Bundle" as const),
      baseSha: sha.map((s) => s.slice(0, 12)),
    })
    .map((k) => (k.format === "Tarball" ? { ...k, baseSha: undefined } : k));

  it("decodes every key it encodes", () =>
    fc.assert(
      fc.property(key, (k) => {
        const decoded = decodeKey(encodeKey(k));
        assert.deepEqual({ ...decoded, baseSha: decoded.baseSha }, { ...k, baseSha: k.baseSha });
      }),
      RUNS,
    ));
  it("refuses any other key only with KeyError naming it", () =>
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.base64String().map((b) => `${b}.tar.age`),
        ),
        (text) => onlyThrows(() => decodeKey(text), KeyError, /^object key /),
      ),
      RUNS,
    ));
  it("lets no archive entry leave its folder", () =>
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("a", "b", "..", ".", "", "/", "c:"), { maxLength: 6 }).map((p) => p.join("/")),
        fc.constantFrom("File", "Directory", "SymbolicLink", "Link", "CharacterDevice", "FIFO") as fc.Arbitrary<Parameters<typeof entryProblem>[1]>,
        fc.option(
          fc.array(fc.constantFrom("a", "..", "/", "b"), { maxLength: 4 }).map((p) => p.join("/")),
          { nil: undefined },
        ),
        (entry, type, link) => {
          const problem = entryProblem(entry, type, link);
          if (problem !== undefined) return;
          assert.ok(!entry.startsWith("/") && !entry.split(/[\\/]+/).includes(".."), `${entry} was allowed`);
          if (type === "SymbolicLink" || type === "Link") assert.ok(link !== undefined && !link.startsWith("/"), `${entry} → ${link} was allowed`);
        },
      ),
      RUNS,
    ));
  it("refuses any bytes that are no bundle with an Error, never a TypeError or RangeError", () =>
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.string().map((s) => new TextEncoder().encode(`# v2 git bundle\n${s}`)),
        ),
        (bytes) => {
          try {
            parseBundle(bytes);
          } catch (err) {
            assert.ok(!(err instanceof TypeError) && !(err instanceof RangeError), `threw ${(err as Error).name}: ${(err as Error).message}`);
          }
        },
      ),
      RUNS,
    ));
});

describe("properties: dataset keys, values and config.ini", () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$/);
  it("reads back every key it writes", () =>
    fc.assert(
      fc.property(segment, segment, (hub, operator) => {
        const key = advertKey("/gitsync/datasets", hub, "2026-12-01", operator);
        const advert = parseAdvert("/gitsync/datasets", key, JSON.stringify({ url: "https://h/r.git", hub, operator }));
        assert.deepEqual([advert?.hub, advert?.date, advert?.operator], [hub, "2026-12-01", operator]);
      }),
      RUNS,
    ));
  it("reads any key and value without throwing", () =>
    fc.assert(
      fc.property(
        fc.string(),
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (key, value) => void parseAdvert("/p", `/p/${key}`, value),
      ),
      RUNS,
    ));
  it("refuses any config.ini only with ConfigError naming the file", () =>
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .array(
              fc.tuple(fc.constantFrom("[WORKING_ENVIRONMENT]", "[ETCD]", "WORKDIR", "OPERATOR", "HOST", "PORT", "IMPORTDIR"), fc.string({ maxLength: 8 })),
            )
            .map((lines) => lines.map(([k, v]) => (k.startsWith("[") ? k : `${k} = ${v}`)).join("\n")),
        ),
        (text) => onlyThrows(() => parseOldConfig("config.ini", text), ConfigError, /^config\.ini: /),
      ),
      RUNS,
    ));
});

describe("properties: the backup index", () => {
  const index: fc.Arbitrary<Index> = fc.dictionary(
    fc.string({ minLength: 1, maxLength: 40 }),
    fc.record({ etag: fc.string({ maxLength: 34 }), size: fc.nat() }),
  );
  it("reads back every index it renders", () =>
    fc.assert(
      fc.property(index, (i) => assert.deepEqual(parseIndex(renderIndex(i, "clusterbackup/")), JSON.parse(JSON.stringify(i)))),
      RUNS,
    ));
  it("reads anything else as no index, without throwing", () =>
    fc.assert(
      fc.property(fc.string(), (text) => void parseIndex(text)),
      RUNS,
    ));
});

describe("properties: git URLs and known_hosts", () => {
  it("refuses any text that is no git URL with an Error naming it, never a TypeError", () =>
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          parseGitUrl(text);
        } catch (err) {
          assert.ok(!(err instanceof TypeError), `threw TypeError: ${(err as Error).message}`);
        }
      }),
      RUNS,
    ));
  it("finds every repository under the server it is under", () =>
    fc.assert(
      fc.property(
        fc.constantFrom("https://git.example.com", "https://git.example.com/", "ssh://git@git.example.com:2222", "git@git.example.com:"),
        fc.stringMatching(/^[a-z0-9-]{1,10}\/[a-z0-9-]{1,10}$/),
        (base, repo) => {
          const parsed = parseGitUrl(repoUnder(base, `${repo}.git`));
          const where = parsed.transport === "http" ? new URL(parsed.url).pathname.slice(1) : parsed.path.replace(/^\//, "");
          assert.equal(where, `${repo}.git`);
        },
      ),
      RUNS,
    ));
  it("reads any known_hosts text without throwing", () =>
    fc.assert(
      fc.property(fc.string(), fc.string({ maxLength: 20 }), (text, host) => void keysFor(text, host)),
      RUNS,
    ));
});

// `gitsync dataset`: discover, follow, import and publish dataset adverts in etcd; what the
// old script's interactive retrieve and publish modes did, scriptable. Exit 0 on success, 1
// when nothing matched, 2 on a connection or input error. Messages name the endpoint, never
// the password.

import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { parseOldConfig, type OldConfig } from "../dataset/config.js";
import {
  advertDate,
  advertKey,
  DEFAULT_PREFIX,
  findAdvert,
  listAdverts,
  mayReplace,
  parseAdvert,
  parseTags,
  SEGMENT,
  trimPrefix,
  type Advert,
  type AdvertValue,
} from "../dataset/advert.js";
import { EtcdStore, type EtcdSettings } from "../etcd/store.js";
import { GitRepository } from "../git/repo.js";
import { cloneAtCommit, commitAllAndPush } from "../git/worktree.js";
import { parseDuration } from "../util/duration.js";
import { errorText } from "../util/log.js";
import { registerSecret } from "../util/redact.js";
import { normalizeRepoUrl } from "../util/url.js";
import { commandGitCredentials, SSH_FLAGS, SSH_USAGE } from "./git-credentials.js";
import { commandProgress } from "./progress.js";

export const DATASET_USAGE = `Usage: gitsync dataset <command> [options]

Commands:
  ls [HUB[/DATE]] [--tag k=v]...    hubs, the dates in a hub, or the adverts of a date (or matching tags)
  show HUB/DATE/OPERATOR            print one advert
  import HUB/DATE/OPERATOR [DIR]    clone the advertised repo at the advertised commit and verify it
                                    (default DIR: <IMPORTDIR or .>/<hub>/<date>/<operator>)
  watch [HUB] [--exec CMD]          print new and updated adverts as JSON lines; run CMD for each
                                    (the advert as JSON on stdin, DATASET_KEY/URL/COMMIT in its env)
  publish --hub H [--operator O] [--repo DIR] [--ttl 24h] [--description T] [--tag k=v] [--license L]
                                    commit the folder's changes as "sync <YYYY-MM-DD>", push, advertise

Options:
  --endpoints URL[,URL]   etcd [ETCD_ENDPOINTS]       --prefix P   default ${DEFAULT_PREFIX}
  --username, --password  etcd auth [ETCD_USERNAME, ETCD_PASSWORD]
  --cacert, --cert, --key PEM files for TLS [ETCD_CACERT, ETCD_CERT, ETCD_KEY]
  --config FILE           the old tool's config.ini: [WORKING_ENVIRONMENT] WORKDIR, OPERATOR,
                          IMPORTDIR and [ETCD] HOST, PORT
  --output text|json      default text
  --quiet                 no progress line for import (on stderr; never with --output json)
${SSH_USAGE}
Git credentials for import and publish come from GIT_USERNAME and GIT_TOKEN (HTTP), or the
SSH key and known_hosts above.
Exit codes: 0 success, 1 nothing matched, 2 connection or input error.
`;

const OPTIONS = {
  endpoints: { type: "string" },
  username: { type: "string" },
  password: { type: "string" },
  cacert: { type: "string" },
  cert: { type: "string" },
  key: { type: "string" },
  prefix: { type: "string" },
  config: { type: "string" },
  output: { type: "string", short: "o", default: "text" },
  tag: { type: "string", multiple: true },
  exec: { type: "string" },
  hub: { type: "string" },
  operator: { type: "string" },
  repo: { type: "string" },
  ttl: { type: "string", default: "24h" },
  description: { type: "string" },
  license: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
  ...SSH_FLAGS,
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

export interface DatasetIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Ends `watch`; default SIGINT or SIGTERM. */
  stop?: AbortSignal;
}

class InputError extends Error {}

const DEFAULT_IO: DatasetIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), env: process.env };

export async function runDataset(argv: string[], io: DatasetIo = DEFAULT_IO): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h") return (io.out(DATASET_USAGE), command ? 0 : 2);
  let parsed: { values: Flags; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true });
  } catch (err) {
    return fail(io, (err as Error).message);
  }
  if (parsed.values.help) return (io.out(DATASET_USAGE), 0);
  try {
    const context = resolveContext(parsed.values, io.env);
    return await dispatch(command, parsed, context, io);
  } catch (err) {
    return fail(io, errorText(err));
  }
}

interface Context {
  settings: EtcdSettings;
  prefix: string;
  config: OldConfig;
  json: boolean;
  /** No progress line: --quiet, or JSON output. */
  quiet: boolean;
  /** --ssh-key and --known-hosts, for import and publish over SSH. */
  ssh: { sshKey?: string; knownHosts?: string };
}

function dispatch(command: string, parsed: { values: Flags; positionals: string[] }, context: Context, io: DatasetIo): Promise<number> {
  const [first, second] = parsed.positionals;
  switch (command) {
    case "ls":
      return withStore(context, (store) => list(store, context, first, parseTags(parsed.values.tag ?? []), io));
    case "show":
      return withStore(context, (store) => show(store, context, required(first, "HUB/DATE/OPERATOR"), io));
    case "import":
      return withStore(context, (store) => importAdvert(store, context, { path: required(first, "HUB/DATE/OPERATOR"), dir: second }, io));
    case "watch":
      return withStore(context, (store) => watch(store, context, { hub: first, exec: parsed.values.exec }, io));
    case "publish":
      return withStore(context, (store) => publish(store, context, parsed.values, io));
    default:
      throw new InputError(`unknown command "${command}"`);
  }
}

function resolveContext(values: Flags, env: NodeJS.ProcessEnv): Context {
  const config = values.config ? parseOldConfig(values.config, readText(values.config, "--config")) : {};
  const endpoints = (values.endpoints || env.ETCD_ENDPOINTS || config.endpoint || "")
    .split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  if (endpoints.length === 0) throw new InputError("name etcd with --endpoints, ETCD_ENDPOINTS or --config");
  const file = (flag: string, value: string | undefined): string | undefined => (value ? readText(value, flag) : undefined);
  const password = values.password ?? env.ETCD_PASSWORD;
  registerSecret(password);
  if (values.output !== "text" && values.output !== "json") throw new InputError(`--output must be text or json, not "${values.output}"`);
  return {
    settings: {
      endpoints,
      username: values.username ?? env.ETCD_USERNAME,
      password,
      caCert: file("--cacert", values.cacert ?? env.ETCD_CACERT),
      cert: file("--cert", values.cert ?? env.ETCD_CERT),
      key: file("--key", values.key ?? env.ETCD_KEY),
    },
    prefix: trimPrefix(values.prefix ?? DEFAULT_PREFIX),
    config,
    json: values.output === "json",
    quiet: (values.quiet ?? false) || values.output === "json",
    ssh: { sshKey: values["ssh-key"], knownHosts: values["known-hosts"] },
  };
}

async function withStore(context: Context, fn: (store: EtcdStore) => Promise<number>): Promise<number> {
  const store = new EtcdStore(context.settings);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

async function adverts(store: EtcdStore, prefix: string): Promise<Advert[]> {
  return (await store.list(`${prefix}/`)).flatMap((kv) => parseAdvert(prefix, kv.key, kv.value, kv.lease) ?? []);
}

async function list(store: EtcdStore, context: Context, at: string | undefined, tags: Record<string, string>, io: DatasetIo): Promise<number> {
  const listing = listAdverts(await adverts(store, context.prefix), at, tags);
  if (listing.level === "adverts") {
    io.out(context.json ? `${JSON.stringify(listing.adverts, null, 2)}\n` : advertTable(listing.adverts));
    return listing.adverts.length > 0 ? 0 : 1;
  }
  const names = listing.level === "hubs" ? listing.hubs : listing.dates;
  io.out(context.json ? `${JSON.stringify(names, null, 2)}\n` : names.map((n) => `${n}\n`).join(""));
  return names.length > 0 ? 0 : 1;
}

function advertTable(list: Advert[]): string {
  const rows = list.map((a) => [`${a.hub}/${a.date}/${a.key.split("/").at(-1) ?? a.operator}`, (a.commit ?? "-").slice(0, 12), age(a.publishedAt), a.url]);
  const header = ["ADVERT", "COMMIT", "AGE", "URL"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return (
    [header, ...rows]
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

function age(publishedAt: string | undefined): string {
  const ms = publishedAt ? Date.now() - Date.parse(publishedAt) : NaN;
  if (Number.isNaN(ms)) return "-";
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`;
}

async function show(store: EtcdStore, context: Context, at: string, io: DatasetIo): Promise<number> {
  const advert = findAdvert(await adverts(store, context.prefix), at);
  if (!advert) return (io.err(`gitsync dataset: no advert ${at} under ${context.prefix}\n`), 1);
  io.out(`${JSON.stringify(advert, null, 2)}\n`);
  return 0;
}

async function importAdvert(store: EtcdStore, context: Context, target: { path: string; dir?: string }, io: DatasetIo): Promise<number> {
  const advert = findAdvert(await adverts(store, context.prefix), target.path);
  if (!advert) return (io.err(`gitsync dataset: no advert ${target.path} under ${context.prefix}\n`), 1);
  if (advert.unreadable) throw new InputError(`${advert.key}: unreadable advert: ${advert.unreadable}`);
  if (!advert.commit) throw new InputError(`${advert.key} names no commit (an advert of the old tool): clone ${advert.url} yourself`);
  const dir = target.dir ?? path.join(context.config.importDir ?? ".", advert.hub, advert.date, advert.operator);
  if (existsSync(dir)) throw new InputError(`${dir} already exists`);
  const credentials = commandGitCredentials(io.env, context.ssh);
  // Leave no half-made clone behind: on failure, remove the first folder on the way that did not exist before.
  let created = path.resolve(dir);
  while (!existsSync(path.dirname(created))) created = path.dirname(created);
  const progress = commandProgress({ quiet: context.quiet });
  try {
    await cloneAtCommit({ url: advert.url, dir, branch: advert.branch, commit: advert.commit, credentials, progress: progress.sink }).finally(() =>
      progress.stop(),
    );
  } catch (err) {
    await rm(created, { recursive: true, force: true });
    throw new Error(`import of ${advert.key}: ${errorText(err)}`, { cause: err });
  }
  io.out(`Imported ${advert.hub}/${advert.date}/${advert.operator} into ${dir} at ${advert.commit} (verified: HEAD is the advertised commit)\n`);
  return 0;
}

async function watch(store: EtcdStore, context: Context, options: { hub?: string; exec?: string }, io: DatasetIo): Promise<number> {
  const prefix = options.hub ? `${context.prefix}/${options.hub}/` : `${context.prefix}/`;
  const from = BigInt(await store.revision(prefix)) + 1n;
  const watcher = await store.watch(prefix, String(from), (event, kv) => {
    const advert = event === "put" ? parseAdvert(context.prefix, kv.key, kv.value, kv.lease) : undefined;
    if (event === "put" && !advert) return;
    const line = JSON.stringify(event === "put" ? { event, ...advert } : { event, key: kv.key });
    io.out(`${line}\n`);
    if (options.exec && advert) runHook(options.exec, advert, line, io);
  });
  const stop = io.stop ?? signalStop();
  await new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener("abort", () => resolve(), { once: true })));
  await watcher.cancel();
  return 0;
}

function signalStop(): AbortSignal {
  const controller = new AbortController();
  process.once("SIGINT", () => controller.abort());
  process.once("SIGTERM", () => controller.abort());
  return controller.signal;
}

function runHook(command: string, advert: Advert, line: string, io: DatasetIo): void {
  const child = spawn("sh", ["-c", command], {
    stdio: ["pipe", "inherit", "inherit"],
    env: { ...io.env, DATASET_KEY: advert.key, DATASET_URL: advert.url, DATASET_COMMIT: advert.commit ?? "" },
  });
  child.stdin.end(`${line}\n`);
  child.on("exit", (code) => {
    if (code !== 0) io.err(`gitsync dataset watch: --exec exited ${code} for ${advert.key}\n`);
  });
}

async function publish(store: EtcdStore, context: Context, values: Flags, io: DatasetIo): Promise<number> {
  const hub = required(values.hub, "--hub");
  const operator = values.operator ?? context.config.operator;
  if (!operator) throw new InputError("name the publisher with --operator or OPERATOR in --config");
  for (const [flag, value] of [
    ["--hub", hub],
    ["--operator", operator],
  ] as const)
    if (!SEGMENT.test(value)) throw new InputError(`${flag} "${value}": letters, digits, '.', '_' or '-' only`);
  const dir = values.repo ?? context.config.workDir ?? ".";
  const now = new Date();
  const credentials = commandGitCredentials(io.env, context.ssh);
  const folder = await commitAllAndPush({ dir, message: `sync ${advertDate(now)}`, author: { name: operator, email: `${operator}@gitsync.dev` }, credentials });
  const stats = await new GitRepository(folder.url, path.join(dir, ".git")).treeStats(folder.commit);
  const value: AdvertValue = {
    url: folder.url,
    branch: folder.branch,
    commit: folder.commit,
    publishedAt: now.toISOString(),
    hub,
    operator,
    description: values.description,
    tags: parseTags(values.tag ?? []),
    license: values.license,
    ...stats,
  };
  const key = advertKey(context.prefix, hub, advertDate(now), operator);
  const existing = await store.get(key);
  const previous = existing && parseAdvert(context.prefix, existing.key, existing.value, existing.lease);
  if (previous && !mayReplace(previous, { url: value.url }, (a, b) => normalizeRepoUrl(a) === normalizeRepoUrl(b))) {
    throw new InputError(`${key} is advertised by another publisher (${previous.url}): choose another --operator`);
  }
  // No keepalive from a one-shot command: the advert lives for --ttl, so publish again (from cron) to keep it.
  const lease = await store.lease(Math.max(5, Math.round(parseDuration(values.ttl ?? "24h") / 1000)), false);
  if (!(await store.putIfUnchanged(key, JSON.stringify(value), await lease.grant(), existing)))
    throw new InputError(`${key} changed while it was being written: try again`);
  io.out(`${folder.committed ? "Committed and pushed" : "Pushed"} ${folder.commit.slice(0, 12)}; advertised ${key} for ${values.ttl}\n`);
  return 0;
}

function required(value: string | undefined, what: string): string {
  if (!value) throw new InputError(`name ${what}`);
  return value;
}

function readText(file: string, flag: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new InputError(`${flag} ${file}: ${(err as Error).message}`);
  }
}

function fail(io: DatasetIo, message: string): number {
  io.err(`gitsync dataset: ${message}\n`);
  return 2;
}

// `gitsync compose`: what a ComposeDeployment would apply, for CI and for review, without a
// cluster. `render` prints the Kubernetes objects of a project, `plan` what a new version
// would roll and why, `import-opsgit` a ComposeDeployment for a repository set up for the
// old Groovy tool. Exit 0 on success, 2 on an invalid project or input, naming the file,
// service and key.

import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { FolderFiles, type ProjectFiles } from "../compose/files.js";
import { GROUP, VERSION } from "../crds/common.js";
import { formatPlan, planProject } from "../compose/plan.js";
import { ComposeInvalidError, loadProject, type LoadOptions } from "../compose/project.js";
import { renderProject, type Manifest, type RenderedProject, type RenderOptions } from "../compose/render.js";
import { configMapData } from "../compose/volumes.js";
import { ageDecrypt, GitProjectFiles } from "../engines/compose.js";
import { GitRepository, type RefSpec } from "../git/repo.js";
import { repositoryOrigin } from "../git/worktree.js";
import { isSshUrl } from "../util/giturl.js";
import { errorText } from "../util/log.js";
import { commandGitCredentials, SSH_FLAGS, SSH_USAGE } from "./git-credentials.js";

export const COMPOSE_USAGE = `Usage: gitsync compose <command> [options]

Commands:
  render [--output yaml|json] SOURCE       print the Kubernetes objects of a project (no cluster needed)
  plan [--output text|json] OLD NEW        which services a new version creates, rolls or deletes, and why
  import-opsgit gitops-config.json         print a ComposeDeployment for a repo set up for the old tool

SOURCE, OLD and NEW are a folder or URL#REF (a branch, tag or commit of a git repository).

Options:
  --name N              the ComposeDeployment's name (default: the folder or repository name)
  --namespace NS        default "default"
  --path P              the project folder inside a repository
  --compose-file F      default: compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml
  --env-file F          default .env
  --profile P           activate a compose profile (repeatable; default COMPOSE_PROFILES of the env file)
  --services a,b        only these services
  --rollout Changed|AllOnProjectChange   default Changed
  --age-identity FILE   an age identity for files named *.age [GITSYNC_AGE_IDENTITY]
${SSH_USAGE}
A URL is https://, ssh:// or user@host:path; HTTP credentials come from GIT_USERNAME and GIT_TOKEN.
Exit codes: 0 success, 2 invalid project or input.
`;

const OPTIONS = {
  name: { type: "string" },
  namespace: { type: "string", default: "default" },
  path: { type: "string" },
  "compose-file": { type: "string" },
  "env-file": { type: "string" },
  profile: { type: "string", multiple: true },
  services: { type: "string" },
  rollout: { type: "string", default: "Changed" },
  "age-identity": { type: "string" },
  output: { type: "string" },
  help: { type: "boolean", short: "h" },
  ...SSH_FLAGS,
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

class UsageError extends Error {}

/** A source: a folder, or URL#REF fetched into a temporary bare clone. */
async function openSource(source: string, values: Values, temps: string[]): Promise<{ files: ProjectFiles; name: string }> {
  const hash = source.lastIndexOf("#");
  const url = hash > 0 ? source.slice(0, hash) : source;
  if (/^https?:\/\//.test(url) || isSshUrl(url)) {
    const refText = hash > 0 ? source.slice(hash + 1) : "main";
    const dir = await mkdtemp(path.join(os.tmpdir(), "gitsync-compose-"));
    temps.push(dir);
    const repo = new GitRepository(url, dir, commandGitCredentials(process.env, { sshKey: values["ssh-key"], knownHosts: values["known-hosts"] }));
    const ref: RefSpec = /^[0-9a-f]{40}$/.test(refText) ? { commit: refText } : (await repo.resolve({ tag: refText })) ? { tag: refText } : { branch: refText };
    const { commit } = await repo.sync(ref);
    return { files: new GitProjectFiles(repo, commit, values.path), name: path.basename(url.replace(/^.*:/, "/")).replace(/\.git$/, "") };
  }
  const folder = path.resolve(source, values.path ?? "");
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UsageError(`${source}: not a folder or a git URL#REF`);
  return { files: new FolderFiles(folder), name: path.basename(folder) };
}

function loadOptions(values: Values): LoadOptions {
  const identityFile = values["age-identity"] ?? process.env.GITSYNC_AGE_IDENTITY;
  const identity = identityFile
    ? readFileSync(identityFile, "utf8")
        .split("\n")
        .find((l) => l.startsWith("AGE-SECRET-KEY-1"))
    : undefined;
  if (identityFile && !identity) throw new UsageError(`${identityFile}: holds no age identity (AGE-SECRET-KEY-1...)`);
  return { composeFile: values["compose-file"], envFile: values["env-file"], profiles: values.profile, decrypt: identity ? ageDecrypt(identity) : undefined };
}

function renderOptions(values: Values, name: string): RenderOptions {
  if (values.rollout !== "Changed" && values.rollout !== "AllOnProjectChange")
    throw new UsageError(`--rollout must be Changed or AllOnProjectChange, not "${values.rollout}"`);
  return {
    name: values.name ?? name.toLowerCase().replace(/[^a-z0-9-]+/g, "-"),
    namespace: values.namespace ?? "default",
    services: values.services?.split(",").filter(Boolean),
    rollout: values.rollout,
  };
}

async function renderFiles(files: ProjectFiles, values: Values, name: string): Promise<RenderedProject> {
  return renderProject(await loadProject(files, loadOptions(values)), renderOptions(values, name));
}

async function renderSource(source: string, values: Values, temps: string[]): Promise<{ files: ProjectFiles; rendered: RenderedProject }> {
  const { files, name } = await openSource(source, values, temps);
  return { files, rendered: await renderFiles(files, values, name) };
}

/** A Secret of decrypted env files as review output shows it: its keys, never its values (CI logs are not a place for them). */
function withheld(secret: Manifest): Manifest {
  const data = Object.fromEntries(Object.keys((secret.data ?? {}) as Record<string, string>).map((key) => [key, ""]));
  const note = { "gitsync.dev/note": "values withheld: decrypted from *.age files by the operator when it applies" };
  return { ...secret, metadata: { ...secret.metadata, annotations: { ...secret.metadata.annotations, ...note } }, data };
}

/** Every object, ConfigMaps with their data, in application order; Secret values withheld. */
async function manifests(files: ProjectFiles, rendered: RenderedProject): Promise<Manifest[]> {
  const out: Manifest[] = [...rendered.claims];
  for (const service of rendered.services) {
    if (service.secret) out.push(withheld(service.secret));
    for (const plan of service.configMaps) {
      const { data, binaryData } = await configMapData(files, plan);
      out.push({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { ...service.deployment.metadata, name: plan.name },
        ...(Object.keys(data).length ? { data } : {}),
        ...(Object.keys(binaryData).length ? { binaryData } : {}),
      });
    }
    out.push(service.deployment, ...(service.service ? [service.service] : []));
  }
  return out;
}

async function render(positionals: string[], values: Values, temps: string[]): Promise<void> {
  if (positionals.length !== 1) throw new UsageError("render takes one SOURCE");
  const { files, rendered } = await renderSource(positionals[0]!, values, temps);
  const objects = await manifests(files, rendered);
  if (values.output === "json") process.stdout.write(`${JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2)}\n`);
  else if (values.output === undefined || values.output === "yaml") process.stdout.write(objects.map((o) => stringify(o)).join("---\n"));
  else throw new UsageError(`--output must be yaml or json, not "${values.output}"`);
  for (const note of rendered.notes) process.stderr.write(`note: ${note}\n`);
}

async function plan(positionals: string[], values: Values, temps: string[]): Promise<void> {
  if (positionals.length !== 2) throw new UsageError("plan takes OLD and NEW");
  const [older, newer] = [await openSource(positionals[0]!, values, temps), await openSource(positionals[1]!, values, temps)];
  // Both versions under one name (the new one's): the name is in every label, so it would change every hash.
  const plans = planProject(await renderFiles(older.files, values, newer.name), await renderFiles(newer.files, values, newer.name));
  if (values.output === "json") process.stdout.write(`${JSON.stringify({ services: plans }, null, 2)}\n`);
  else if (values.output === undefined || values.output === "text") process.stdout.write(`${formatPlan(plans)}\n`);
  else throw new UsageError(`--output must be text or json, not "${values.output}"`);
}

interface OpsGitConfig {
  composeFile?: string;
  compose_file?: string;
  envFile?: string;
  env_file?: string;
  services?: (string | { name: string })[];
  branch?: string;
}

async function importOpsGit(positionals: string[], values: Values): Promise<void> {
  if (positionals.length !== 1) throw new UsageError("import-opsgit takes the path of gitops-config.json");
  const file = path.resolve(positionals[0]!);
  let config: OpsGitConfig;
  try {
    config = JSON.parse(readFileSync(file, "utf8")) as OpsGitConfig;
  } catch (err) {
    throw new UsageError(`${positionals[0]}: ${errorText(err)}`);
  }
  const origin = await repositoryOrigin(path.dirname(file));
  const services = config.services?.map((s) => (typeof s === "string" ? s : s.name));
  const folder = origin.path;
  const doc = {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: "ComposeDeployment",
    metadata: { name: values.name ?? renderOptions(values, path.basename(origin.url).replace(/\.git$/, "")).name, namespace: values.namespace },
    spec: {
      source: { url: origin.url, ref: { branch: config.branch ?? origin.branch ?? "main" }, ...(folder ? { path: folder } : {}) },
      ...optional("composeFile", config.composeFile ?? config.compose_file),
      ...optional("envFile", config.envFile ?? config.env_file),
      ...(services?.length ? { services } : {}),
      rollout: "AllOnProjectChange",
      interval: "5m",
    },
  };
  process.stdout.write(stringify(doc));
  process.stderr.write("note: rollout AllOnProjectChange keeps the old tool's rule; Changed rolls only the services a change concerns\n");
}

function optional(key: string, value: string | undefined): Record<string, string> {
  return value ? { [key]: value } : {};
}

export async function runCompose(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const temps: string[] = [];
  try {
    const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true });
    if (!command || values.help || command === "--help" || command === "-h") {
      process.stdout.write(COMPOSE_USAGE);
      return 0;
    }
    if (command === "render") await render(positionals, values, temps);
    else if (command === "plan") await plan(positionals, values, temps);
    else if (command === "import-opsgit") await importOpsGit(positionals, values);
    else throw new UsageError(`unknown command "${command}"\n\n${COMPOSE_USAGE}`);
    return 0;
  } catch (err) {
    const invalid = err instanceof ComposeInvalidError;
    process.stderr.write(`gitsync compose: ${invalid ? "invalid project: " : ""}${errorText(err)}\n`);
    return 2;
  } finally {
    await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

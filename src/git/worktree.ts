// Repositories with a working tree, for people's folders: a clone checked out at an exact
// commit (and verified), and "commit everything in this folder and push" (the old dataset
// tool's publish). The operator's own clones stay bare (repo.ts).

import fs from "node:fs";
import { cp } from "node:fs/promises";
import path from "node:path";
import git, { Errors } from "isomorphic-git";
import type { ProgressSink } from "../util/progress.js";
import { redact, safeUrl } from "../util/redact.js";
import type { GitCredentials } from "./auth.js";
import { GitError } from "./errors.js";
import { gitFs } from "./fs.js";
import { gitProgress } from "./progress.js";
import { SshError } from "./ssh.js";
import { openTransport, sshGitError } from "./transport.js";

/** Clones url into dir and checks out `commit` on `branch`; throws unless HEAD is then that commit. */
export async function cloneAtCommit(options: {
  url: string;
  dir: string;
  branch?: string;
  commit: string;
  credentials?: GitCredentials;
  /** The clone's and the checkout's phases. */
  progress?: ProgressSink;
}): Promise<string> {
  const { url, dir, branch, commit, credentials } = options;
  const onProgress = gitProgress(options.progress);
  const transport = openTransport(url, credentials);
  try {
    await git.clone({
      fs: gitFs,
      http: transport.http,
      dir,
      url: transport.url,
      ref: branch,
      singleBranch: true,
      noCheckout: true,
      headers: transport.headers,
      onProgress,
    });
    await git.checkout({ fs: gitFs, dir, ref: commit, force: true, onProgress });
  } catch (err) {
    if (err instanceof Errors.NotFoundError)
      throw new GitError("not-found", `${safeUrl(url)}: commit ${commit} is not on ${branch ?? "the default branch"}`, err);
    throw networkError(`clone ${safeUrl(url)}`, err);
  } finally {
    transport.release();
  }
  // Keep no credentials in the clone's config.
  await git.setConfig({ fs: gitFs, dir, path: "remote.origin.url", value: safeUrl(url) });
  const head = await git.resolveRef({ fs: gitFs, dir, ref: "HEAD" });
  if (head !== commit) throw new GitError("invalid", `${dir}: HEAD is ${head}, not the advertised ${commit}`);
  return head;
}

export interface PublishedFolder {
  /** The commit now at the branch's tip (new, or the one already there). */
  commit: string;
  branch: string;
  /** origin's URL without credentials. */
  url: string;
  committed: boolean;
}

/** Commits every change in the folder (added, modified, deleted) with `message`, and pushes the branch to origin. */
export async function commitAllAndPush(options: {
  dir: string;
  message: string;
  author: { name: string; email: string };
  credentials?: GitCredentials;
}): Promise<PublishedFolder> {
  const { dir, message, author, credentials } = options;
  if (!fs.existsSync(`${dir}/.git`)) throw new GitError("invalid", `${dir} is not a git working folder (no .git)`);
  const url: unknown = await git.getConfig({ fs: gitFs, dir, path: "remote.origin.url" });
  if (typeof url !== "string" || !url) throw new GitError("invalid", `${dir}: no remote named origin`);
  const transport = openTransport(url, credentials);
  const branch = (await git.currentBranch({ fs: gitFs, dir })) ?? "main";
  let changed = 0;
  for (const [filepath, head, workdir, stage] of await git.statusMatrix({ fs: gitFs, dir })) {
    if (head === 1 && workdir === 1 && stage === 1) continue;
    if (workdir === 0) await git.remove({ fs: gitFs, dir, filepath });
    else await git.add({ fs: gitFs, dir, filepath });
    changed += 1;
  }
  let commit: string;
  if (changed > 0) {
    const signature = { ...author, timestamp: Math.floor(Date.now() / 1000), timezoneOffset: 0 };
    commit = await git.commit({ fs: gitFs, dir, message, author: signature, committer: signature });
  } else {
    commit = await git.resolveRef({ fs: gitFs, dir, ref: "HEAD" });
  }
  const result = await git
    .push({ fs: gitFs, http: transport.http, dir, url: transport.url, ref: branch, remoteRef: branch, headers: transport.headers })
    .catch((err: unknown) => {
      throw networkError(`push ${branch} to ${safeUrl(url)}`, err);
    })
    .finally(() => transport.release());
  if (!result.ok) throw new GitError("rejected", `${safeUrl(url)}: push of ${branch} rejected: ${result.error ?? "the remote moved; pull first"}`);
  return { commit, branch, url: safeUrl(url), committed: changed > 0 };
}

/**
 * Where a folder lives in its repository: origin's URL (without credentials; an scp-like or
 * ssh:// remote as it is), the checked-out branch and the folder's path.
 */
export async function repositoryOrigin(folder: string): Promise<{ url: string; branch?: string; path: string }> {
  const dir = await git.findRoot({ fs: gitFs, filepath: folder }).catch(() => {
    throw new GitError("not-found", `${folder} is not inside a git repository`);
  });
  const remote = (await git.getConfig({ fs: gitFs, dir, path: "remote.origin.url" })) as string | undefined;
  if (!remote) throw new GitError("not-found", `${dir}: the repository has no remote "origin"`);
  const url = safeUrl(remote);
  const branch = (await git.currentBranch({ fs: gitFs, dir })) ?? undefined;
  const relative = fs.realpathSync(folder).slice(fs.realpathSync(dir).length).replace(/^\/+/, "");
  return { url, branch, path: relative };
}

/** A failure of a network operation as a GitError: an SSH failure keeps its kind (a refused key or host key needs a person). */
function networkError(what: string, err: unknown): GitError {
  if (err instanceof GitError) return err;
  if (err instanceof SshError) return sshGitError(err);
  return new GitError("network", `failed to ${what}: ${redact(err instanceof Error ? err.message : String(err))}`, err);
}

/**
 * A working folder (tree and .git/) at `commit` on `branch`, made from a local mirror without
 * touching the network: the mirror's objects are copied, the branch written and checked out,
 * and no remote is configured (the partition wire format carries no URL). Returns the commit.
 */
export async function checkoutFromMirror(options: { mirror: string; dir: string; branch: string; commit: string }): Promise<string> {
  const { mirror, dir, branch, commit } = options;
  await git.init({ fs: gitFs, dir, defaultBranch: branch });
  await cp(path.join(mirror, "objects"), path.join(dir, ".git", "objects"), { recursive: true });
  await git.writeRef({ fs: gitFs, dir, ref: `refs/heads/${branch}`, value: commit, force: true });
  await git.checkout({ fs: gitFs, dir, ref: branch, force: true });
  return commit;
}

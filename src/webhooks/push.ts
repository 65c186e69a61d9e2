// Push webhooks: a generic {"url": ...} with a bearer token, a GitHub push event signed
// with X-Hub-Signature-256, or a GitLab push event with X-Gitlab-Token. Pure: headers and
// body in, the pushed repository URL (or an HTTP error) out.

import { createHmac, timingSafeEqual } from "node:crypto";

export interface WebhookSecrets {
  token?: string;
  githubSecret?: string;
  gitlabToken?: string;
}

export type PushParse = { url: string } | { status: 400 | 401; error: string };

export function parsePush(headers: Record<string, string | string[] | undefined>, body: Buffer, secrets: WebhookSecrets): PushParse {
  const header = (name: string): string | undefined => {
    const value = headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  };
  let authenticated: "github" | "gitlab" | "generic";
  const signature = header("x-hub-signature-256");
  const gitlab = header("x-gitlab-token");
  const bearer = /^Bearer (.+)$/i.exec(header("authorization") ?? "")?.[1];
  if (signature !== undefined) {
    const expected = secrets.githubSecret && `sha256=${createHmac("sha256", secrets.githubSecret).update(body).digest("hex")}`;
    if (!expected || !same(signature, expected)) return { status: 401, error: "bad X-Hub-Signature-256" };
    authenticated = "github";
  } else if (gitlab !== undefined) {
    if (!secrets.gitlabToken || !same(gitlab, secrets.gitlabToken)) return { status: 401, error: "bad X-Gitlab-Token" };
    authenticated = "gitlab";
  } else if (bearer !== undefined) {
    if (!secrets.token || !same(bearer, secrets.token)) return { status: 401, error: "bad bearer token" };
    authenticated = "generic";
  } else {
    return { status: 401, error: "no signature, GitLab token or bearer token" };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString("utf8"));
  } catch {
    return { status: 400, error: "body is not JSON" };
  }
  const url = pushedUrl(payload, authenticated);
  return url ? { url } : { status: 400, error: `no repository URL in the ${authenticated} push body` };
}

function pushedUrl(payload: unknown, source: "github" | "gitlab" | "generic"): string | undefined {
  const p = payload as { url?: unknown; repository?: Record<string, unknown>; project?: Record<string, unknown> };
  const candidates =
    source === "github"
      ? [p.repository?.clone_url, p.repository?.html_url]
      : source === "gitlab"
        ? [p.project?.git_http_url, p.repository?.git_http_url, p.project?.web_url]
        : [p.url];
  return candidates.find((c): c is string => typeof c === "string" && c.length > 0);
}

function same(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

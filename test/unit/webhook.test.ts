import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { parsePush, type PushParse } from "../../src/webhooks/push.js";

const secrets = { token: "bearer-tok", githubSecret: "gh-secret", gitlabToken: "gl-token" };
const github = Buffer.from(JSON.stringify({ repository: { clone_url: "https://github.example/org/stock.git" } }));
const gitlab = Buffer.from(JSON.stringify({ project: { git_http_url: "https://gitlab.example/org/stock.git" } }));
const generic = Buffer.from(JSON.stringify({ url: "https://git.example/stock.git" }));
const sign = (body: Buffer, secret = secrets.githubSecret): string => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;

describe("parsePush", () => {
  const table: [string, Record<string, string>, Buffer, PushParse][] = [
    ["accepts a GitHub push signed with the secret", { "x-hub-signature-256": sign(github) }, github, { url: "https://github.example/org/stock.git" }],
    [
      "rejects a GitHub push signed with another secret",
      { "x-hub-signature-256": sign(github, "other") },
      github,
      { status: 401, error: "bad X-Hub-Signature-256" },
    ],
    ["accepts a GitLab push with the token", { "x-gitlab-token": "gl-token" }, gitlab, { url: "https://gitlab.example/org/stock.git" }],
    ["rejects a GitLab push with a wrong token", { "x-gitlab-token": "nope" }, gitlab, { status: 401, error: "bad X-Gitlab-Token" }],
    ["accepts a generic body with the bearer token", { authorization: "Bearer bearer-tok" }, generic, { url: "https://git.example/stock.git" }],
    ["rejects a request with no credentials", {}, generic, { status: 401, error: "no signature, GitLab token or bearer token" }],
    ["answers 400 to a body that is not JSON", { authorization: "Bearer bearer-tok" }, Buffer.from("{"), { status: 400, error: "body is not JSON" }],
    [
      "answers 400 when the body names no repository",
      { authorization: "Bearer bearer-tok" },
      Buffer.from("{}"),
      { status: 400, error: "no repository URL in the generic push body" },
    ],
  ];
  for (const [name, headers, body, expected] of table) it(name, () => assert.deepEqual(parsePush(headers, body, secrets), expected));

  it("rejects every push while no secret is configured", () => {
    assert.equal((parsePush({ "x-hub-signature-256": sign(github) }, github, {}) as { status: number }).status, 401);
  });
});

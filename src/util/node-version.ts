// The Node.js this build runs on. Older ones fail deep inside the HTTP stack (undici) with
// a TypeError, so every command checks first and says what to do instead.

export const REQUIRED_NODE_MAJOR = 24;

/** Why `version` (process.versions.node) cannot run gitsync, or undefined when it can. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return [
    `gitsync needs Node.js ${REQUIRED_NODE_MAJOR} or newer; this is Node.js ${version}.`,
    `Run it with Node.js ${REQUIRED_NODE_MAJOR}: in a checkout, 'npm ci' installs it as a devDependency and 'npx gitsync ...' uses it;`,
    `elsewhere install Node.js ${REQUIRED_NODE_MAJOR} (e.g. 'npm install -g node@${REQUIRED_NODE_MAJOR}'), or use the operator's container image.`,
  ].join("\n");
}

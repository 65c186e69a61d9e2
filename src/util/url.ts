// Repository URLs compared as the same repository: no credentials, no trailing .git or /,
// the host lower-cased. Used by the handshake's resolution and the webhook's URL index.

export function normalizeRepoUrl(url: string): string {
  try {
    const parsed = new URL(url.trim());
    const path = parsed.pathname.replace(/\/+$/, "").replace(/\.git$/, "");
    return `${parsed.protocol}//${parsed.host.toLowerCase()}${path}`;
  } catch {
    return url
      .trim()
      .replace(/\/+$/, "")
      .replace(/\.git$/, "")
      .toLowerCase();
  }
}

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

/**
 * An S3 endpoint as a URL: `https://host:port` as given, or a bare `host:port` (the MinIO
 * client's form) with the scheme that `insecure` picks. Throws a message that names the
 * value when it is no http(s) URL with a host, so a typo fails at once, not on a request.
 */
export function s3EndpointUrl(endpoint: string, insecure = false): string {
  const text = endpoint.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `${insecure ? "http" : "https"}://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new Error(`${JSON.stringify(endpoint)} is not an S3 endpoint (expected host:port or http(s)://host:port)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new Error(`${JSON.stringify(endpoint)}: an S3 endpoint is http:// or https://, not ${url.protocol}//`);
  if (!url.hostname) throw new Error(`${JSON.stringify(endpoint)} names no host`);
  return withScheme;
}

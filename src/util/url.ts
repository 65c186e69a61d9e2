// Repository URLs compared as the same repository, whichever way they are written: no
// credentials, no scheme or port (https://h/o/r, git@h:o/r.git and ssh://git@h:2222/o/r are
// one repository), no trailing .git or /, the host lower-cased. Used by the handshake's
// resolution, the webhook's URL index and the dataset adverts' ownership.

import { parseGitUrl } from "./giturl.js";

export function normalizeRepoUrl(url: string): string {
  try {
    const parsed = parseGitUrl(url.trim());
    if (parsed.transport === "ssh") return `//${parsed.host.toLowerCase()}/${tidyPath(parsed.path)}`;
    const http = new URL(parsed.url);
    return `//${http.hostname.toLowerCase()}/${tidyPath(http.pathname)}`;
  } catch {
    return url
      .trim()
      .replace(/\/+$/, "")
      .replace(/\.git$/, "")
      .toLowerCase();
  }
}

function tidyPath(path: string): string {
  return path
    .replace(/^~?\/+/, "")
    .replace(/\/+$/, "")
    .replace(/\.git$/, "");
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

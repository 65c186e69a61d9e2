// Credentials must never reach logs, events, status or commit messages. Every secret value
// the operator loads is registered here, and every outgoing text passes through redact().

const secretValues = new Set<string>();
const MIN_SECRET_LENGTH = 4;

/** Remembers a secret value so that redact() replaces it wherever it appears. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= MIN_SECRET_LENGTH) secretValues.add(value);
}

/** Strips userinfo from every URL in the text and masks every registered secret value. */
export function redact(text: string): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, "$1");
  for (const value of secretValues) {
    if (out.includes(value)) out = out.split(value).join("***");
  }
  return out;
}

/**
 * A URL as safe to show and store: no password, and no username either, except over SSH,
 * where the user (git@) is part of the address, not a secret.
 */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!/^(ssh|git\+ssh|ssh\+git):$/i.test(parsed.protocol)) parsed.username = "";
    parsed.password = "";
    return parsed.toString();
  } catch {
    return redact(url);
  }
}

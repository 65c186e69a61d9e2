// Go-style durations ("90s", "5m", "1h30m", "250ms"), the unit every interval and timeout uses.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
const durationRegex = new RegExp(DURATION_PATTERN);
const partRegex = /([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g;

/** Milliseconds in a Go-style duration; throws on anything else. */
export function parseDuration(text: string): number {
  if (!durationRegex.test(text)) throw new Error(`invalid duration "${text}" (expected e.g. 30s, 5m, 1h30m)`);
  let total = 0;
  for (const match of text.matchAll(partRegex)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ""] ?? 0);
  }
  return total;
}

/** Formats milliseconds as the shortest Go-style duration, e.g. 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${hours ? `${hours}h` : ""}${minutes ? `${minutes}m` : ""}${seconds || (!hours && !minutes) ? `${seconds}s` : ""}`;
}

// How the live commands print: a table whose one flexible column (the status message) is cut
// to fit the terminal, ages as kubectl prints them, and kinds named the ways kubectl accepts
// (kind, plural, singular, short name), with a suggestion for a typo. Pure.

import type { KindDefinition } from "../crds/common.js";

/** A table: `flex` is the column cut (with …) so that each line fits `width`; the others keep their width. */
export function renderTable(headers: string[], rows: string[][], width: number, flex: number): string {
  const gap = 3;
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => (row[i] ?? "").length)));
  const others = widths.reduce((sum, w, i) => (i === flex ? sum : sum + w), 0) + gap * (headers.length - 1);
  const flexWidth = Math.max(headers[flex]?.length ?? 0, 10, Math.min(widths[flex] ?? 0, width - others));
  widths[flex] = flexWidth;
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => {
        const text = i === flex ? cut(cell, flexWidth) : cell;
        return i === cells.length - 1 ? text : text.padEnd((widths[i] ?? 0) + gap);
      })
      .join("")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

function cut(text: string, width: number): string {
  const flat = text.replace(/\s+/g, " ");
  return flat.length <= width ? flat : `${flat.slice(0, Math.max(0, width - 1))}…`;
}

/** An age as kubectl prints one: 45s, 12m, 5h, 3d, 2y. */
export function age(fromMs: number, nowMs: number): string {
  const seconds = Math.max(0, Math.floor((nowMs - fromMs) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  if (seconds < 365 * 86400) return `${Math.floor(seconds / 86400)}d`;
  return `${Math.floor(seconds / (365 * 86400))}y`;
}

/** The names a kind answers to. */
function names(kind: KindDefinition): string[] {
  return [kind.kind.toLowerCase(), kind.plural, kind.singular, ...kind.shortNames];
}

/** The kind a word names, or an error that says which kinds exist and which one the word is closest to. */
export function resolveKind(word: string, kinds: readonly KindDefinition[]): KindDefinition {
  const wanted = word.toLowerCase().replace(/\.gitsync\.dev$/, "");
  const found = kinds.find((kind) => names(kind).includes(wanted));
  if (found) return found;
  const close = kinds.filter((kind) => names(kind).some((name) => distance(name, wanted) <= 2));
  const hint = close.length ? `; did you mean ${close.map((k) => `${k.shortNames[0] ?? k.singular} (${k.kind})`).join(" or ")}?` : "";
  throw new Error(`unknown kind "${word}"${hint} Kinds: ${kinds.map((k) => `${k.kind} (${k.shortNames.join(", ")})`).join(", ")}`);
}

/** Levenshtein distance, for suggesting a kind. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

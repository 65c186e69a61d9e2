// Strings in code-unit order. The same on every replica whatever its locale (a shard ring's
// order must be), and no ICU collator loaded: a process's first localeCompare costs it about
// 4 MiB of RSS and 10 ms.

export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

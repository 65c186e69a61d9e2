// Progress of long work. The engines report what is under way as they go (objects listed,
// downloaded, committed; bytes received or packed); the commands draw it on the terminal
// (src/cli/progress.ts) and the operator puts it in the Ready message, throttled.

export type ProgressUnit = "objects" | "files" | "repositories" | "bytes";

export interface Progress {
  /** What is under way, as a verb: "Listing", "Downloading", "Receiving objects". */
  phase: string;
  done: number;
  /** Unknown while, for example, a listing is still paging. */
  total?: number;
  /** What done and total count (default objects). */
  unit?: ProgressUnit;
}

export type ProgressSink = (progress: Progress) => void;

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 12345 as "12,345". Not Intl.NumberFormat: creating one loads ICU's locale data, about 8 MiB of RSS and 18 ms in every process that imports this. */
function grouped(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** The power of 1024 that bytes read best in (12.3 MiB: 2). */
function scaleOf(bytes: number): number {
  let i = 0;
  while (bytes >= 1024 ** (i + 1) && i < BYTE_UNITS.length - 1) i++;
  return i;
}

function scaled(bytes: number, scale: number): string {
  return scale === 0 ? String(Math.round(bytes)) : (bytes / 1024 ** scale).toFixed(1);
}

/** A number as the unit reads: 4,210 (objects) or 12.3 MiB (bytes). */
export function formatAmount(n: number, unit: ProgressUnit = "objects"): string {
  if (unit !== "bytes") return grouped(Math.round(n));
  const scale = scaleOf(n);
  return `${scaled(n, scale)} ${BYTE_UNITS[scale]}`;
}

/** One line for a human: "Downloading 4,210/10,000 objects", "Listing 3,000 objects", "Receiving objects 1.2/4.0 MiB". */
export function describeProgress(p: Progress): string {
  const unit = p.unit ?? "objects";
  if (unit === "bytes") {
    if (p.total === undefined) return `${p.phase} ${formatAmount(p.done, unit)}`;
    const scale = scaleOf(p.total);
    return `${p.phase} ${scaled(p.done, scale)}/${scaled(p.total, scale)} ${BYTE_UNITS[scale]}`;
  }
  return `${p.phase} ${p.total === undefined ? formatAmount(p.done) : `${formatAmount(p.done)}/${formatAmount(p.total)}`} ${unit}`;
}

/**
 * When a long pass may report again: first after `afterMs` of work (short passes never
 * report), then at most once every `everyMs`.
 */
export class ProgressThrottle {
  private next: number;

  constructor(
    private readonly afterMs: number,
    private readonly everyMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.next = now() + afterMs;
  }

  /** True when a report is due now; the next one is then due everyMs later. */
  due(): boolean {
    const now = this.now();
    if (now < this.next) return false;
    this.next = now + this.everyMs;
    return true;
  }
}

/** A count of `total` items in one phase: reports 0 at once, then each advance. */
export function counter(sink: ProgressSink | undefined, phase: string, total: number, unit: ProgressUnit = "objects"): (n?: number) => void {
  let done = 0;
  sink?.({ phase, done, total, unit });
  return (n = 1) => {
    done += n;
    sink?.({ phase, done, total, unit });
  };
}

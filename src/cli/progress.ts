// The progress line of long commands, drawn by cli-progress: on a terminal, one line redrawn in
// place; otherwise one plain line every few seconds. It goes to stderr, so stdout (the JSON log
// lines, or a command's JSON output) never carries it.

import cliProgress from "cli-progress";
import { describeProgress, formatAmount, type Progress, type ProgressSink } from "../util/progress.js";

export interface CommandProgress {
  sink: ProgressSink;
  /** Draws the last line and ends it; the timer no longer holds the process. */
  stop(): void;
}

const QUIET: CommandProgress = { sink: () => undefined, stop: () => undefined };

/** A plain line every 5 s when stderr is not a terminal. */
const PLAIN_EVERY_MS = 5_000;

export function commandProgress(options: { quiet?: boolean; stream?: NodeJS.WriteStream } = {}): CommandProgress {
  if (options.quiet) return QUIET;
  const bar = new cliProgress.SingleBar({
    stream: options.stream ?? process.stderr,
    noTTYOutput: true,
    notTTYSchedule: PLAIN_EVERY_MS,
    hideCursor: true,
    gracefulExit: true,
    format: (_options, _params, payload: { line: string }) => payload.line,
  });
  let phase: { name: string; startedAt: number; startDone: number } | undefined;
  let started = false;
  return {
    sink: (progress) => {
      const now = Date.now();
      if (phase?.name !== progress.phase) phase = { name: progress.phase, startedAt: now, startDone: progress.done };
      const line = progressLine(progress, (now - phase.startedAt) / 1000, progress.done - phase.startDone);
      if (started) return bar.update(progress.done, { line });
      started = true;
      bar.start(progress.total ?? 0, progress.done, { line });
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** "Downloading 4,210/10,000 objects, 1,052 objects/s, about 6 s left": the phase's rate once it has run a second. */
export function progressLine(progress: Progress, seconds: number, advanced: number): string {
  const parts = [describeProgress(progress)];
  if (seconds >= 1 && advanced > 0) {
    const rate = advanced / seconds;
    const unit = progress.unit ?? "objects";
    parts.push(`${formatAmount(rate, unit)}${unit === "bytes" ? "" : ` ${unit}`}/s`);
    if (progress.total !== undefined && progress.total > progress.done) parts.push(`about ${formatSeconds((progress.total - progress.done) / rate)} left`);
  }
  return parts.join(", ");
}

export function formatSeconds(seconds: number): string {
  const whole = Math.ceil(seconds);
  return whole < 60 ? `${whole} s` : `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

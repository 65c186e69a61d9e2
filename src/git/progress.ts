// isomorphic-git's onProgress, as the engines' progress reports.

import type { GitProgressEvent } from "isomorphic-git";
import type { ProgressSink } from "../util/progress.js";

/** isomorphic-git's phases ("Receiving objects", "Resolving deltas", "Updating workdir"), counted in objects. */
export function gitProgress(progress: ProgressSink | undefined): ((event: GitProgressEvent) => void) | undefined {
  return progress && ((event) => progress({ phase: event.phase, done: event.loaded, total: event.total || undefined }));
}

// The environment's supervisor: `node supervisor.js STATE_FILE PARENT_PID`, started detached
// by processes.ts. It reads nothing but the end of its stdin, a pipe from the process that
// started the environment: that end comes when the process is gone, however it went (SIGKILL
// included). Then it kills the processes the state file lists (by pid and start time, so a
// reused pid is spared) with everything below them, undoes the node (containers, mounts,
// network namespaces, iptables, the bridge) and removes the folders. A process that exits
// normally has cleaned up itself and left the file empty.

import { readFileSync, rmSync } from "node:fs";
import { undoNode, type NodeCleanup } from "./node.js";
import { killTrees, processStart, sweepFolder } from "./processes.js";

export interface SupervisedState {
  processes: { pid: number; start: string }[];
  nodes: NodeCleanup[];
  /** Folders whose naming processes (with all below them) and mounts go: a container engine's. */
  sweeps: string[];
  folders: string[];
}

const [stateFile] = process.argv.slice(2);

let done = false;
function cleanUp(): void {
  if (done || !stateFile) return;
  done = true;
  let state: SupervisedState = { processes: [], nodes: [], sweeps: [], folders: [] };
  try {
    state = JSON.parse(readFileSync(stateFile, "utf8")) as SupervisedState;
  } catch {
    // No state: nothing was started, or it was all cleaned up already.
  }
  killTrees(state.processes.filter(({ pid, start }) => processStart(pid) === start).map(({ pid }) => pid));
  for (const node of state.nodes) undoNode(node);
  for (const folder of state.sweeps ?? []) sweepFolder(folder);
  for (const folder of state.folders) rmSync(folder, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
  process.exit(0);
}

process.stdin.on("end", cleanUp);
process.stdin.on("close", cleanUp);
process.stdin.on("error", cleanUp);
process.stdin.resume();

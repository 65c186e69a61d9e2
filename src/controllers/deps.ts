// What every controller factory takes: one object, so that a kind needing something new
// (an etcd client, a node) adds a field here and changes no other kind.

import type { WorkDirs } from "../git/workdir.js";

export interface ControllerDeps {
  workDirs: WorkDirs;
}

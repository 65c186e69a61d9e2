// The controllers `gitsync operator` runs, one per kind.

import type { WorkDirs } from "../git/workdir.js";
import type { AnyController } from "../runtime/manager.js";
import { clusterBackupSyncController } from "./clusterbackupsync/controller.js";
import { serviceHandshakeController } from "./servicehandshake/controller.js";

export interface ControllerDeps {
  workDirs: WorkDirs;
}

export function controllers(deps: ControllerDeps): AnyController[] {
  return [serviceHandshakeController(deps.workDirs), clusterBackupSyncController(deps.workDirs)];
}

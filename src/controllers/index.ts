// Every kind the operator serves, in one list: the CRD generator reads each kind's API from
// it, `gitsync operator` builds each controller from it, and the webhook's URL index walks
// the controllers built from it. Adding a kind touches its crds file, its controller folder
// and this list.

import type { KindDefinition } from "../crds/common.js";
import { clusterBackupSyncKind } from "../crds/clusterbackupsync.js";
import { composeDeploymentKind } from "../crds/composedeployment.js";
import { partitionSyncKind } from "../crds/partitionsync.js";
import { datasetAdvertKind } from "../crds/datasetadvert.js";
import { serviceHandshakeKind } from "../crds/servicehandshake.js";
import type { AnyController } from "../runtime/manager.js";
import { clusterBackupSyncController } from "./clusterbackupsync/controller.js";
import { composeDeploymentController } from "./composedeployment/controller.js";
import { partitionSyncController } from "./partitionsync/controller.js";
import { datasetAdvertController } from "./datasetadvert/controller.js";
import type { ControllerDeps } from "./deps.js";
import { serviceHandshakeController } from "./servicehandshake/controller.js";

export type { ControllerDeps } from "./deps.js";

export interface KindRegistration {
  kind: KindDefinition;
  controller: (deps: ControllerDeps) => AnyController;
}

export const registrations: readonly KindRegistration[] = [
  { kind: serviceHandshakeKind, controller: serviceHandshakeController },
  { kind: clusterBackupSyncKind, controller: clusterBackupSyncController },
  { kind: datasetAdvertKind, controller: datasetAdvertController },
  { kind: composeDeploymentKind, controller: composeDeploymentController },
  { kind: partitionSyncKind, controller: partitionSyncController },
];

/** The API of every kind, for the CRD generator. */
export const kinds: KindDefinition[] = registrations.map((r) => r.kind);

/** A controller for every kind, for `gitsync operator`. */
export function controllers(deps: ControllerDeps): AnyController[] {
  return registrations.map((r) => r.controller(deps));
}

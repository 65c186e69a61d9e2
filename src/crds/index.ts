// Every kind the operator serves. Each kind's issue adds its schema file here.

import type { KindDefinition } from "./common.js";
import { clusterBackupSyncKind } from "./clusterbackupsync.js";
import { serviceHandshakeKind } from "./servicehandshake.js";

export const kinds: KindDefinition[] = [serviceHandshakeKind, clusterBackupSyncKind];

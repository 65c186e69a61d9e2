// The controllers `gitsync operator` runs, one per kind. Each kind's issue adds its own.

import type { AnyController } from "../runtime/manager.js";

export const controllers: AnyController[] = [];

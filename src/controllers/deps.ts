// What every controller factory takes: one object, so that a kind needing something new
// (an etcd client, a node) adds a field here and changes no other kind.

import type { WorkDirs } from "../git/workdir.js";
import type { S3IdentityOptions } from "./credentials.js";

export interface ControllerDeps {
  workDirs: WorkDirs;
  /** How objects may reach buckets: with identities of their own (serviceAccountName) or not. */
  s3: S3IdentityOptions;
}

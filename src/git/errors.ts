// The one error type of the git layer: a kind callers decide on, and a message that names
// the remote (never its credentials).

import { redact } from "../util/redact.js";

/** auth: the credentials were refused; host-key: the server's key is unknown or changed; invalid: the configuration is wrong. */
export type GitErrorKind = "auth" | "host-key" | "not-found" | "network" | "rejected" | "invalid";

/** A git failure with the remote's URL (never its credentials) in the message. */
export class GitError extends Error {
  constructor(
    readonly kind: GitErrorKind,
    message: string,
    cause?: unknown,
  ) {
    super(redact(message), { cause });
    this.name = "GitError";
  }
}

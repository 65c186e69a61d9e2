// writeBack: the handshake result recorded in each service.yaml's actualState. Pure: the
// file's text and the result in, the new text out, or nothing when actualState already says
// the same (lastChecked aside), so an identical result never makes a commit.

import { isDeepStrictEqual } from "node:util";
import { parseDocument } from "yaml";
import type { EdgeResult } from "./check.js";
import type { ServiceManifest } from "./manifests.js";

export interface ActualState {
  lastChecked: string;
  handshakeStatus: "success" | "failed";
  details: Record<string, { status: "success" | "failed"; message: string }>;
}

/** actualState for the service at `index` of the check's input, keyed by its desiredState dependency keys. */
export function actualStateFor(service: ServiceManifest, index: number, edges: EdgeResult[], now: string): ActualState {
  const own = edges.filter((e) => e.fromService === index);
  const details: ActualState["details"] = {};
  service.dependencies.forEach((dependency, i) => {
    const failures = own[i]?.failures ?? [];
    details[dependency.key] = failures.length
      ? { status: "failed", message: failures.map((f) => f.message).join("; ") }
      : { status: "success", message: `${own[i]?.to ?? dependency.key} agrees (${own[i]?.mode ?? "strict"})` };
  });
  const failed = Object.values(details).some((d) => d.status === "failed");
  return { lastChecked: now, handshakeStatus: failed ? "failed" : "success", details };
}

/** service.yaml with actualState replaced, keeping comments and layout; undefined when nothing but lastChecked would change. */
export function writeBackServiceYaml(text: string, state: ActualState): string | undefined {
  const doc = parseDocument(text);
  const previous = (doc.toJS() as { actualState?: Partial<ActualState> } | null)?.actualState;
  const unchanged = previous && isDeepStrictEqual([previous.handshakeStatus, previous.details], [state.handshakeStatus, state.details]);
  if (unchanged) return undefined;
  doc.setIn(["actualState"], doc.createNode(state));
  return doc.toString();
}

// events.k8s.io/v1 Events. The reconciler emits them on transitions only; a failure to
// record an event is logged and never fails the reconcile.

import { randomBytes } from "node:crypto";
import { BuiltinResources, microTime, resourcePath, type KubeClient, type KubeObject } from "./kube.js";
import { redact } from "../util/redact.js";
import { errorText, type Logger } from "../util/log.js";

export const REPORTING_CONTROLLER = "gitsync.dev/gitsync-operator";
const MAX_NOTE = 1024;

export type EventType = "Normal" | "Warning";

export class EventRecorder {
  constructor(
    private readonly kube: KubeClient,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  async emit(regarding: KubeObject, type: EventType, reason: string, note: string, action = "Reconcile"): Promise<void> {
    const { name, namespace = "default", uid, resourceVersion } = regarding.metadata;
    const text = redact(note);
    const event = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace },
      eventTime: microTime(new Date()),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.instance,
      action,
      reason,
      type,
      note: text.length > MAX_NOTE ? `${text.slice(0, MAX_NOTE - 3)}...` : text,
      regarding: { apiVersion: regarding.apiVersion, kind: regarding.kind, name, namespace, uid, resourceVersion },
    };
    try {
      await this.kube.request("POST", resourcePath(BuiltinResources.events, namespace), { body: event });
    } catch (err) {
      this.log.warn("Failed to record event", { kind: regarding.kind, namespace, name, reason, error: errorText(err) });
    }
  }
}

// What applying a new version of a project does to each service, and why: created, rolled
// (with the files and compose keys that changed), deleted or unchanged. Shared by the
// controller (events, status) and `gitsync compose plan`. Pure.

import { isDeepStrictEqual } from "node:util";
import type { RenderedProject, RenderedService } from "./render.js";

export type PlanAction = "create" | "roll" | "delete" | "unchanged";

export interface ServicePlan {
  name: string;
  action: PlanAction;
  reasons: string[];
}

const MAX_REASONS = 5;

/** The dotted paths at which two values differ, shallowest first. */
export function changedPaths(before: unknown, after: unknown, at: string): string[] {
  if (isDeepStrictEqual(before, after)) return [];
  const isMap = (v: unknown): v is Record<string, unknown> => Boolean(v) && typeof v === "object" && !Array.isArray(v);
  if (!isMap(before) || !isMap(after)) return [at];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.flatMap((key) => changedPaths(before[key], after[key], `${at}.${key}`));
}

function fileReasons(before: Record<string, string>, after: Record<string, string>): string[] {
  const paths = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return paths.flatMap((p) => {
    if (before[p] === after[p]) return [];
    if (before[p] === undefined) return [`${p} added`];
    if (after[p] === undefined) return [`${p} removed`];
    return [`${p} changed`];
  });
}

/** Why a service's hash changed: its files, its compose keys, the project files (AllOnProjectChange). */
export function rollReasons(before: RenderedService, after: RenderedService, projects?: { before: RenderedProject; after: RenderedProject }): string[] {
  const reasons = [
    ...fileReasons(before.inputs, after.inputs),
    ...changedPaths(before.compose, after.compose, `services.${after.name}`).map((p) => `${p} changed`),
  ];
  if (projects && !reasons.length) {
    if (projects.before.inputs.composeFile !== projects.after.inputs.composeFile) reasons.push("the compose file changed");
    if (projects.before.inputs.envFile !== projects.after.inputs.envFile) reasons.push("the env file changed");
  }
  if (!reasons.length) reasons.push("the rendered objects changed");
  return reasons.length > MAX_REASONS ? [...reasons.slice(0, MAX_REASONS), `and ${reasons.length - MAX_REASONS} more`] : reasons;
}

/** Every service of either version, in the new version's order, then those deleted. */
export function planProject(before: RenderedProject | undefined, after: RenderedProject): ServicePlan[] {
  const old = new Map((before?.services ?? []).map((s) => [s.name, s]));
  const plans: ServicePlan[] = after.services.map((service) => {
    const previous = old.get(service.name);
    if (!previous) return { name: service.name, action: "create", reasons: ["new service"] };
    if (previous.hash === service.hash) return { name: service.name, action: "unchanged", reasons: [] };
    return { name: service.name, action: "roll", reasons: rollReasons(previous, service, before && { before, after }) };
  });
  const current = new Set(after.services.map((s) => s.name));
  for (const name of old.keys()) if (!current.has(name)) plans.push({ name, action: "delete", reasons: ["no longer in the project"] });
  return plans;
}

/** One line per service, for people: "roll  logstash: logstash/pipeline/main.conf changed". */
export function formatPlan(plans: ServicePlan[]): string {
  return plans.map((p) => `${p.action.padEnd(9)} ${p.name}${p.reasons.length ? `: ${p.reasons.join("; ")}` : ""}`).join("\n");
}

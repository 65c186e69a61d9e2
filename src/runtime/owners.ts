// Which object owns a child the operator applied: an ownerReference to the kind (same
// namespace), or, where an ownerReference cannot be used (another namespace, a
// cluster-scoped child), the gitsync.dev/owner labels. Pure.

import type { KubeObject } from "./kube.js";

export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY = "gitsync-operator";
/** The selector every owned-resource watch uses, so the operator caches only its own children. */
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY}`;

export const OWNER_LABEL = "gitsync.dev/owner";
export const OWNER_KIND_LABEL = "gitsync.dev/owner-kind";
export const OWNER_NAMESPACE_LABEL = "gitsync.dev/owner-namespace";

interface OwnerReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  controller?: boolean;
}

/** The labels that name an owner where an ownerReference cannot (label values are at most 63 characters). */
export function ownerLabels(owner: { kind: string; namespace: string; name: string }): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY, [OWNER_KIND_LABEL]: owner.kind, [OWNER_NAMESPACE_LABEL]: owner.namespace, [OWNER_LABEL]: owner.name };
}

/** The `namespace/name` key of the child's owner of the given kind and API group, if it has one. */
export function ownerKey(child: KubeObject, owner: { kind: string; group: string }): string | undefined {
  const references = (child.metadata.ownerReferences ?? []) as OwnerReference[];
  const reference = references.find((r) => r.kind === owner.kind && r.apiVersion?.startsWith(`${owner.group}/`));
  if (reference?.name && child.metadata.namespace) return `${child.metadata.namespace}/${reference.name}`;
  const labels = child.metadata.labels ?? {};
  const name = labels[OWNER_LABEL];
  const namespace = labels[OWNER_NAMESPACE_LABEL] ?? child.metadata.namespace;
  if (labels[OWNER_KIND_LABEL] === owner.kind && name && namespace) return `${namespace}/${name}`;
  return undefined;
}

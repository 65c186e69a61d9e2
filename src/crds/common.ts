// The vocabulary every kind shares (ARCHITECTURE.md, "Shared spec vocabulary"). These zod
// schemas are the only definition of the API: TypeScript types come from z.infer and the
// CRD YAML from hack/gen-crds.ts.

import { z } from "zod";
import { DURATION_PATTERN } from "../util/duration.js";
import { parseGitUrl, repoUnder } from "../util/giturl.js";
import { s3EndpointUrl } from "../util/url.js";

export const GROUP = "gitsync.dev";
/** The version the operator speaks and the API server stores. */
export const VERSION = "v1beta1";
/**
 * Versions still served, with the same schema (conversion None), deprecated: objects stored at
 * one are rewritten at VERSION by the operator at start or by `gitsync migrate` (src/runtime/migrate.ts).
 */
export const DEPRECATED_VERSIONS = ["v1alpha1"];
export const CATEGORY = "gitsync";

export const duration = z.string().regex(new RegExp(DURATION_PATTERN), "must be a Go duration such as 30s, 5m or 1h30m");

/** A Secret in the object's own namespace; references never cross namespaces. */
export const secretRef = z.object({
  name: z.string().min(1).max(253).describe("Name of a Secret in the same namespace."),
});

export const gitRef = z
  .object({
    branch: z.string().min(1).optional(),
    tag: z.string().min(1).optional(),
    commit: z
      .string()
      .regex(/^[0-9a-f]{40}$/, "must be a full 40-character commit id")
      .optional(),
  })
  .refine((ref) => [ref.branch, ref.tag, ref.commit].filter(Boolean).length === 1, "exactly one of branch, tag or commit must be set")
  .meta({
    "x-kubernetes-validations": [
      { rule: "[has(self.branch), has(self.tag), has(self.commit)].filter(x, x).size() == 1", message: "exactly one of branch, tag or commit must be set" },
    ],
  });

/** A repository over smart HTTP(S) or SSH: https://host/r.git, ssh://user@host[:port]/r.git or user@host:r.git. */
export const gitUrl = z
  .string()
  .regex(/^(https?|ssh):\/\/[^\s]+$|^([^@/\s:]+@)?[^:/\s]+:[^\s]+$/, "must be an https://, http://, ssh:// or scp-like (user@host:path) git URL")
  .refine((url) => gitUrlError(url) === undefined, { error: (issue) => gitUrlError(String(issue.input)) });

/** A git server that repositories are found under (<base>/<group>/<project>.git): a URL, or scp-like user@host: with an optional prefix. */
export const gitServerUrl = z
  .string()
  .regex(/^(https?|ssh):\/\/[^\s]+$|^([^@/\s:]+@)?[^:/\s]+:[^\s]*$/, "must be an https://, http://, ssh:// or scp-like (user@host:) git server URL")
  .refine((base) => gitUrlError(repoUnder(base, "group/project.git")) === undefined, {
    error: (issue) => gitUrlError(repoUnder(String(issue.input), "group/project.git")),
  });

/** The message of what `check` throws, or undefined when it passes: a parser as a zod refinement. */
function problem(check: () => unknown): string | undefined {
  try {
    check();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const gitUrlError = (url: string): string | undefined => problem(() => parseGitUrl(url));

/** An object's own proxy (Flux's proxySecretRef); without one, the operator's HTTPS_PROXY, HTTP_PROXY and NO_PROXY apply. */
export const proxySecretRef = secretRef.describe(
  "Secret with the proxy's address (http://host:port) and optional username and password, used for every connection of this object; default the operator's HTTPS_PROXY, HTTP_PROXY and NO_PROXY.",
);

export const gitSource = z.object({
  url: gitUrl.describe("The repository: https://, ssh:// or scp-like user@host:path."),
  ref: gitRef.optional().describe("Exactly one of branch, tag or commit; default the branch main."),
  secretRef: secretRef
    .optional()
    .describe(
      "HTTP(S): username + password (or token), or bearerToken; optional ca.crt, and tls.crt + tls.key for a client certificate. SSH: identity, known_hosts and optional password (Flux's format).",
    ),
  path: z.string().optional().describe("Folder inside the repository."),
  proxySecretRef: proxySecretRef.optional(),
});

const endpointError = (endpoint: string): string | undefined => problem(() => s3EndpointUrl(endpoint));

const s3LocationFields = {
  endpoint: z
    .string()
    .min(1)
    .refine((e) => endpointError(e) === undefined, { error: (issue) => endpointError(String(issue.input)) })
    .describe("S3 endpoint, e.g. https://minio.example:9000."),
  bucket: z.string().min(3).max(63),
  region: z.string().default("us-east-1"),
  insecure: z.boolean().default(false).describe("Use plain HTTP."),
  forcePathStyle: z.boolean().default(true),
  provider: z
    .enum(["generic", "aws"])
    .default("generic")
    .describe(
      "generic: static keys from secretRef, or its tls.crt and tls.key exchanged for keys at the server's STS (MinIO's AssumeRoleWithCertificate). aws: secretRef's keys if it holds any, else serviceAccountName's role, else the AWS SDK's default chain of the operator's own identity (IRSA, EKS Pod Identity, profiles, instance metadata).",
    ),
  serviceAccountName: z
    .string()
    .min(1)
    .max(253)
    .optional()
    .describe("provider aws: a ServiceAccount in this namespace whose eks.amazonaws.com/role-arn is assumed with a token the operator requests for it."),
  secretRef: secretRef
    .optional()
    .describe("Secret with accesskey and secretkey (optional sessiontoken); optional ca.crt, and tls.crt + tls.key for a client certificate."),
  proxySecretRef: proxySecretRef.optional(),
};

const SERVICE_ACCOUNT_NEEDS_AWS = "serviceAccountName needs provider: aws";
const awsWhenServiceAccount = (s: Partial<Record<"serviceAccountName" | "provider", unknown>>): boolean => !s.serviceAccountName || s.provider === "aws";

/** An S3 location with its key prefix (each kind has its own default); a ServiceAccount identity is an AWS one. */
// eslint-disable-next-line @typescript-eslint/explicit-module-boundary-types -- the schema's type is what zod infers from `extra`
export function s3LocationWith<Extra extends z.ZodRawShape>(extra: Extra) {
  return z
    .object({ ...s3LocationFields, ...extra })
    .refine((s) => awsWhenServiceAccount(s), {
      message: SERVICE_ACCOUNT_NEEDS_AWS,
      path: ["serviceAccountName"],
    })
    .meta({ "x-kubernetes-validations": [{ rule: "!has(self.serviceAccountName) || self.provider == 'aws'", message: SERVICE_ACCOUNT_NEEDS_AWS }] });
}

export const s3Location = s3LocationWith({ prefix: z.string().optional() });

/** What status shows of the identity a bucket was reached with: never a key or a token. */
export const s3IdentityStatus = z
  .object({
    provider: z.enum(["generic", "aws"]),
    source: z
      .enum(["secret", "certificate", "serviceAccount", "operator"])
      .describe(
        "secret: static keys; certificate: the Secret's client certificate exchanged at the server's STS (MinIO); serviceAccount: the object's own; operator: the operator's default chain.",
      ),
    roleArn: z.string().optional(),
    serviceAccount: z.string().optional(),
  })
  .describe("The identity the bucket was last reached with.");

export const condition = z.object({
  type: z.string(),
  status: z.enum(["True", "False", "Unknown"]),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.string(),
  observedGeneration: z.number().int().optional(),
});

/** The fields of every spec: when to reconcile and whether to at all. */
export const commonSpecFields = {
  interval: duration.optional().describe("How often to reconcile, e.g. 5m."),
  timeout: duration.optional().describe("How long one reconcile may take."),
  suspend: z.boolean().optional().describe("Stop reconciling until set to false."),
};

export const commonStatusFields = {
  observedGeneration: z.number().int().optional(),
  conditions: z
    .array(condition)
    .optional()
    .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] }),
  lastHandledReconcileAt: z.string().optional().describe("The last reconcile request handled: gitsync.dev/requestedAt or reconcile.fluxcd.io/requestedAt."),
};

export type GitSource = z.infer<typeof gitSource>;
export type S3Location = z.infer<typeof s3Location>;
export type S3IdentityStatus = z.infer<typeof s3IdentityStatus>;

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

/**
 * A kind, stated once: what the CRD generator writes, what its controller reconciles, and
 * the negative-polarity conditions its steps may set (the only ones its status carries
 * beside Ready, Reconciling and Stalled).
 */
export interface KindDefinition<Spec = unknown, Status = unknown> {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  spec: z.ZodType<Spec>;
  status: z.ZodType<Status>;
  /** Kind-specific columns; Ready, Age and Status are added around them. */
  columns: PrinterColumn[];
  /** Negative-polarity condition types, e.g. FetchFailed. */
  conditions: readonly string[];
  group?: string;
  version?: string;
  categories?: string[];
  /** What the object reads, for `gitsync tree`: each source's URL, ref and the revision last acted on. */
  sources?(spec: Spec, status: Status | undefined): SourceShown[];
  /** The revision the object last acted on, short, for `gitsync get`. */
  revision?(status: Status | undefined): string | undefined;
}

/** A source as the live commands show it. */
export interface SourceShown {
  url: string;
  ref?: string;
  revision?: string;
}

/** A git ref as one word: the branch, tag or commit it names. */
export function refShown(ref: { branch?: string; tag?: string; commit?: string } | undefined): string {
  if (!ref) return "branch main";
  if (ref.tag) return `tag ${ref.tag}`;
  if (ref.commit) return `commit ${ref.commit.slice(0, 12)}`;
  return `branch ${ref.branch ?? "main"}`;
}

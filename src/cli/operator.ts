// `gitsync operator`: runs every controller in one process.

import { parseArgs } from "node:util";
import type { ControllerDeps } from "../controllers/deps.js";
import { WorkDirs } from "../git/workdir.js";
import { KubeClient } from "../runtime/kube.js";
import { Manager, type AnyController } from "../runtime/manager.js";
import { CrdVersionError, migrateStoredVersions } from "../runtime/migrate.js";
import { parseDuration } from "../util/duration.js";
import { errorText, rootLogger } from "../util/log.js";
import { GIT_PUSH_PATH, gitPushRoute } from "../webhooks/git.js";

export const OPERATOR_USAGE = `Usage: gitsync operator [options]

Runs every gitsync.dev controller in one process.

Options:
  --kubeconfig PATH            kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, in-cluster)
  --http-address ADDR          where /metrics, /healthz, /readyz and /hooks listen (default :8080)
  --leader-elect               hold a Lease so only one replica reconciles (default on in a cluster)
  --no-leader-elect            run without leader election
  --leader-election-namespace  namespace of the Lease (default: $POD_NAMESPACE or gitsync-system)
  --leader-election-id NAME    name of the Lease (default gitsync-operator)
  --lease-duration DUR         default 15s; --renew-deadline 10s; --retry-period 2s
  --identity NAME              this replica's name in the Lease (default: $POD_NAME or host_pid)
  --sharding                   share the objects out across all replicas instead of one leading
                               (needs --leader-elect; the chart turns it on)
  --work-dir PATH              clones and temp files (default: $GITSYNC_WORK_DIR or <tmp>/gitsync-operator)
  --shutdown-timeout DUR       how long SIGTERM waits for running reconciles (default 30s)
  --concurrency N              reconciles at once per kind (default: 8 handshakes, 4 adverts, 2 of the others)
  --progress-interval DUR      a pass running longer shows its progress in Ready's message, at most
                               one status write per interval (default 5s)
  --webhook-secret NAME        Secret in the leader-election namespace with token, github-secret
                               and/or gitlab-token: enables POST /hooks/git
  --no-object-identity         refuse serviceAccountName on S3 locations: every object with
                               provider aws acts as the operator's own identity

Git, S3 and STS connections go through HTTPS_PROXY / HTTP_PROXY except where NO_PROXY says
(lower case too); an object's proxySecretRef takes precedence. S3 with provider aws and no keys
uses the AWS SDK's default chain (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, AWS_ENDPOINT_URL_STS, ...).
`;

/** Runs the manager with the given controllers until SIGTERM; returns the exit code. */
export async function runOperator(argv: string[], makeControllers: (deps: ControllerDeps) => AnyController[]): Promise<number> {
  let parsed: OperatorFlags;
  try {
    parsed = parseOperatorFlags(argv);
  } catch (err) {
    process.stderr.write(`gitsync operator: ${(err as Error).message}\n\n${OPERATOR_USAGE}`);
    return 2;
  }
  const { values, durations, concurrency } = parsed;
  if (values.help) {
    process.stdout.write(OPERATOR_USAGE);
    return 0;
  }
  const log = rootLogger;
  const workDirs = new WorkDirs(values["work-dir"]);
  const swept = await workDirs.sweep();
  if (swept) log.info("Swept work directory", { root: workDirs.root, entries: swept });
  const inCluster = Boolean(process.env.KUBERNETES_SERVICE_HOST);
  const leaderElect = values["no-leader-elect"] ? false : (values["leader-elect"] ?? inCluster);
  if (values.sharding && !leaderElect) {
    process.stderr.write("gitsync operator: --sharding needs leader election (--leader-elect): the leader shares the objects out\n");
    return 2;
  }
  let kube: KubeClient;
  try {
    kube = KubeClient.fromKubeconfig(values.kubeconfig);
  } catch (err) {
    process.stderr.write(`gitsync operator: cannot load the kubeconfig${values.kubeconfig ? ` ${values.kubeconfig}` : ""}: ${(err as Error).message}\n`);
    return 2;
  }
  const controllers = makeControllers({ workDirs, s3: { objectIdentity: !values["no-object-identity"] } });
  // Objects stored at a deprecated version are written again at the one this release speaks.
  try {
    await migrateStoredVersions(
      kube,
      controllers.map((c) => c.kind),
      log,
    );
  } catch (err) {
    if (err instanceof CrdVersionError) {
      log.error(err.message);
      return 1;
    }
    log.warn("Could not migrate stored objects; the next start tries again", { error: errorText(err) });
  }
  const manager = new Manager(
    {
      kube,
      log,
      httpAddress: values["http-address"],
      identity: values.identity,
      shutdownTimeoutMs: durations.shutdownTimeoutMs,
      concurrency,
      progressIntervalMs: durations.progressIntervalMs,
      sharding: values.sharding,
      leaderElection: leaderElect && {
        namespace: values["leader-election-namespace"],
        name: values["leader-election-id"],
        leaseDurationMs: durations.leaseDurationMs,
        renewDeadlineMs: durations.renewDeadlineMs,
        retryPeriodMs: durations.retryPeriodMs,
      },
    },
    controllers,
  );
  const webhookSecret = values["webhook-secret"];
  if (webhookSecret)
    manager.server.route(GIT_PUSH_PATH, gitPushRoute({ manager, kube, log, secret: { namespace: values["leader-election-namespace"], name: webhookSecret } }));
  try {
    await manager.run();
    return 0;
  } catch {
    return 1;
  }
}

const OPERATOR_OPTIONS = {
  kubeconfig: { type: "string" },
  "http-address": { type: "string", default: ":8080" },
  "leader-elect": { type: "boolean" },
  "no-leader-elect": { type: "boolean" },
  "leader-election-namespace": { type: "string", default: process.env.POD_NAMESPACE ?? "gitsync-system" },
  "leader-election-id": { type: "string", default: "gitsync-operator" },
  "lease-duration": { type: "string", default: "15s" },
  "renew-deadline": { type: "string", default: "10s" },
  "retry-period": { type: "string", default: "2s" },
  identity: { type: "string", default: process.env.POD_NAME },
  sharding: { type: "boolean" },
  "work-dir": { type: "string" },
  "shutdown-timeout": { type: "string", default: "30s" },
  "webhook-secret": { type: "string" },
  concurrency: { type: "string" },
  "progress-interval": { type: "string", default: "5s" },
  "no-object-identity": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type OperatorValues = ReturnType<typeof parseArgs<{ options: typeof OPERATOR_OPTIONS }>>["values"];

interface OperatorFlags {
  values: OperatorValues;
  durations: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number; shutdownTimeoutMs: number; progressIntervalMs: number };
  concurrency: number | undefined;
}

/** The operator's flags, checked: an unknown flag or a duration that is none throws a message naming the flag. */
export function parseOperatorFlags(argv: string[]): OperatorFlags {
  const { values } = parseArgs({ args: argv, options: OPERATOR_OPTIONS });
  const duration = (flag: "lease-duration" | "renew-deadline" | "retry-period" | "shutdown-timeout" | "progress-interval"): number => {
    try {
      return parseDuration(values[flag]);
    } catch (err) {
      throw new Error(`--${flag}: ${(err as Error).message}`, { cause: err });
    }
  };
  const durations = {
    leaseDurationMs: duration("lease-duration"),
    renewDeadlineMs: duration("renew-deadline"),
    retryPeriodMs: duration("retry-period"),
    shutdownTimeoutMs: duration("shutdown-timeout"),
    progressIntervalMs: duration("progress-interval"),
  };
  if (durations.renewDeadlineMs >= durations.leaseDurationMs) throw new Error("--renew-deadline must be shorter than --lease-duration");
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256)) {
    throw new Error(`--concurrency must be a whole number from 1 to 256, not "${values.concurrency}"`);
  }
  return { values, durations, concurrency };
}

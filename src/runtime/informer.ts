// List-then-watch cache for one resource. Watches resume from the last resourceVersion
// (bookmarks keep it fresh), re-list on 410 Gone, and reconnect with backoff after errors
// and API server restarts. Handlers only learn which keys changed.

import { backoffDelay, sleep } from "../util/backoff.js";
import {
  isGone,
  KubeApiError,
  METADATA_ONLY,
  resourcePath,
  type KubeClient,
  type KubeList,
  type KubeObject,
  type ResourceRef,
  type WatchEvent,
} from "./kube.js";
import { errorText, type Logger } from "../util/log.js";

export type ChangeHandler<T> = (key: string, previous: T | undefined, current: T | undefined) => void;

const RECONNECT_BACKOFF = { baseMs: 250, maxMs: 10_000 };
const PAGE_SIZE = 500;

export function objectKey(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

export class Informer<T extends KubeObject> {
  readonly cache = new Map<string, T>();
  private syncedOnce = false;
  private syncWaiters: (() => void)[] = [];

  constructor(
    private readonly kube: KubeClient,
    private readonly ref: ResourceRef,
    private readonly onChange: ChangeHandler<T>,
    private readonly log: Logger,
    /**
     * Narrows what is cached: to the objects the operator manages or a replica owns (labelSelector),
     * to one namespace, or to metadata alone.
     */
    private readonly selector: { labelSelector?: string; namespace?: string; metadataOnly?: boolean } = {},
  ) {}

  private get path(): string {
    return resourcePath(this.ref, this.selector.namespace);
  }

  private accept(request: "list" | "watch"): string | undefined {
    return this.selector.metadataOnly ? METADATA_ONLY[request] : undefined;
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  waitForSync(): Promise<void> {
    return this.syncedOnce ? Promise.resolve() : new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** Runs until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        resourceVersion ??= await this.list(signal);
        resourceVersion = await this.watchFrom(resourceVersion, signal);
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) {
          this.log.info("Re-listed after watch expiry", { resource: this.ref.plural });
          resourceVersion = undefined;
          continue;
        }
        failures += 1;
        this.log.warn("Watch failed, reconnecting", { resource: this.ref.plural, attempt: failures, error: errorText(err) });
        await sleep(backoffDelay(failures, RECONNECT_BACKOFF), signal);
      }
    }
  }

  private async list(signal: AbortSignal): Promise<string> {
    const seen = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion: string;
    do {
      const page = await this.kube.request<KubeList<T>>("GET", this.path, {
        query: { limit: PAGE_SIZE, continue: continueToken, labelSelector: this.selector.labelSelector },
        signal,
        accept: this.accept("list"),
      });
      // A metadata-only list of nothing carries "items": null.
      for (const item of page.items ?? []) seen.set(objectKey(item), withoutManagedFields(item));
      continueToken = page.metadata.continue || undefined;
      resourceVersion = page.metadata.resourceVersion;
    } while (continueToken);
    for (const [key, previous] of this.cache) {
      if (!seen.has(key)) {
        this.cache.delete(key);
        this.onChange(key, previous, undefined);
      }
    }
    for (const [key, current] of seen) {
      const previous = this.cache.get(key);
      this.cache.set(key, current);
      if (previous?.metadata.resourceVersion !== current.metadata.resourceVersion) this.onChange(key, previous, current);
    }
    this.log.debug("Listed resources", { resource: this.ref.plural, count: seen.size, resourceVersion });
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      this.syncWaiters.splice(0).forEach((resolve) => resolve());
    }
    return resourceVersion;
  }

  /** Watches until the server ends the stream; returns the last resourceVersion seen. */
  private async watchFrom(resourceVersion: string, signal: AbortSignal): Promise<string> {
    let latest = resourceVersion;
    let gone: KubeApiError | undefined;
    const stop = new AbortController();
    const abort = (): void => stop.abort();
    signal.addEventListener("abort", abort, { once: true });
    try {
      await this.kube.watch<T>(
        this.path,
        { resourceVersion, allowWatchBookmarks: true, labelSelector: this.selector.labelSelector, timeoutSeconds: 240 + Math.floor(Math.random() * 120) },
        (event: WatchEvent<T>) => {
          if (event.type === "ERROR") {
            const status = event.object as unknown as { code?: number; reason?: string; message?: string };
            gone = new KubeApiError(status.code ?? 500, status.reason ?? "Unknown", status.message ?? "watch error");
            stop.abort();
            return;
          }
          latest = event.object.metadata.resourceVersion ?? latest;
          if (event.type === "BOOKMARK") return;
          const key = objectKey(event.object);
          const previous = this.cache.get(key);
          if (event.type === "DELETED") this.cache.delete(key);
          else this.cache.set(key, withoutManagedFields(event.object));
          this.onChange(key, previous, event.type === "DELETED" ? undefined : event.object);
        },
        stop.signal,
        this.accept("watch"),
      );
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    } finally {
      signal.removeEventListener("abort", abort);
    }
    if (gone) throw gone;
    return latest;
  }
}

/**
 * The object as the cache keeps it: without metadata.managedFields, which no controller reads
 * and which, after server-side applies, is often the largest part of an object (as
 * controller-runtime's TransformStripManagedFields does for Flux).
 */
function withoutManagedFields<T extends KubeObject>(object: T): T {
  delete (object.metadata as { managedFields?: unknown }).managedFields;
  return object;
}

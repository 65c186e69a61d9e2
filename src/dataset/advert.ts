// Dataset adverts in etcd, pure: the key layout <prefix>/<hub>/<YYYY-MM-DD>/<operator>, the
// JSON value, and the views the CLI lists. Shared by the DatasetAdvert controller and
// `gitsync dataset`. The old tool wrote unpadded dates (2024-3-7) and a plain URL as the
// value; both are still read.

import { z } from "zod";
import { describeZodError } from "../util/fields.js";
import { parseGitUrl } from "../util/giturl.js";
import { byCodeUnits } from "../util/order.js";

export const DEFAULT_PREFIX = "/gitsync/datasets";

/** A key segment: no slash, not empty; what hub and operator names may be. */
export const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export const advertValue = z.object({
  url: z.string(),
  branch: z.string().optional(),
  commit: z.string().optional(),
  publishedAt: z.string().optional(),
  hub: z.string(),
  operator: z.string(),
  description: z.string().optional(),
  tags: z.record(z.string(), z.string()).optional(),
  license: z.string().optional(),
  files: z.number().int().optional(),
  bytes: z.number().int().optional(),
});

export type AdvertValue = z.infer<typeof advertValue>;

export interface Advert extends AdvertValue {
  key: string;
  /** Why the value cannot be imported (not JSON of an advert, a URL git does not speak, a commit that is none). */
  unreadable?: string;
  /** The date segment as written (padded or not); `date` below is always YYYY-MM-DD. */
  date: string;
  /** The etcd lease the key is attached to, "0" for none. */
  lease?: string;
}

/** Today (or the given instant) in UTC, zero-padded, so that keys sort by date. */
export function advertDate(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** A date segment as written by either tool, padded: 2024-3-7 → 2024-03-07; undefined if it is no date. */
export function normalizeDate(segment: string): string | undefined {
  const match = /^(\d{4})-(\d{1,2})-(\d{1,2})$/.exec(segment);
  if (!match) return undefined;
  const [, y, m, d] = match as unknown as [string, string, string, string];
  return `${y}-${m.padStart(2, "0")}-${d.padStart(2, "0")}`;
}

export function trimPrefix(prefix: string): string {
  return `/${prefix.replace(/^\/+|\/+$/g, "")}`;
}

export function advertKey(prefix: string, hub: string, date: string, operator: string): string {
  return `${trimPrefix(prefix)}/${hub}/${date}/${operator}`;
}

/** An etcd key and value as an advert; undefined for keys outside the layout. */
export function parseAdvert(prefix: string, key: string, value: string, lease?: string): Advert | undefined {
  const base = `${trimPrefix(prefix)}/`;
  if (!key.startsWith(base)) return undefined;
  const [hub, dateSegment, operator, ...rest] = key.slice(base.length).split("/");
  const date = dateSegment && normalizeDate(dateSegment);
  // Hub and operator become folder names on import: only plain names, as publishers are held to.
  if (!hub || !SEGMENT.test(hub) || !date || !operator || !SEGMENT.test(operator) || rest.length > 0) return undefined;
  const fields = parseValue(value, hub, operator);
  // The key says whose advert it is; a value cannot claim another hub or operator.
  return { ...fields, hub, operator, key, date, lease };
}

/** The JSON value, or the old tool's plain URL; one that cannot be imported carries `unreadable`. */
function parseValue(value: string, hub: string, operator: string): AdvertValue & { unreadable?: string } {
  const text = value.trim();
  const unreadable = (why: string): AdvertValue & { unreadable: string } => ({
    url: "",
    hub,
    operator,
    description: `unreadable advert: ${why}`,
    unreadable: why,
  });
  let fields: AdvertValue;
  if (!text.startsWith("{")) fields = { url: text, hub, operator };
  else {
    try {
      const parsed = advertValue.safeParse(JSON.parse(text));
      if (!parsed.success) return unreadable(describeZodError(parsed.error, "value"));
      fields = parsed.data;
    } catch (err) {
      return unreadable((err as Error).message);
    }
  }
  try {
    parseGitUrl(fields.url);
  } catch {
    return unreadable(`value.url: not a git URL (http, https or ssh)`);
  }
  if (fields.commit !== undefined && !/^[0-9a-f]{40}$/.test(fields.commit)) return unreadable("value.commit: not a full commit id");
  return fields;
}

/** What `gitsync dataset ls` shows for a path: hubs, dates in a hub, or adverts. */
export type Listing = { level: "hubs"; hubs: string[] } | { level: "dates"; hub: string; dates: string[] } | { level: "adverts"; adverts: Advert[] };

/** Filters by `HUB` or `HUB/DATE` (date padded or not) and `key=value` tags. */
export function listAdverts(adverts: Advert[], path: string | undefined, tags: Record<string, string> = {}): Listing {
  const matching = adverts.filter((a) => Object.entries(tags).every(([k, v]) => a.tags?.[k] === v));
  const [hub, date] = (path ?? "").split("/").filter(Boolean);
  if (!hub) {
    if (Object.keys(tags).length > 0) return { level: "adverts", adverts: sortAdverts(matching) };
    return { level: "hubs", hubs: unique(matching.map((a) => a.hub)) };
  }
  const inHub = matching.filter((a) => keyHub(a) === hub);
  if (!date) return { level: "dates", hub, dates: unique(inHub.map((a) => a.date)).reverse() };
  const wanted = normalizeDate(date) ?? date;
  return { level: "adverts", adverts: sortAdverts(inHub.filter((a) => a.date === wanted)) };
}

/** Finds HUB/DATE/OPERATOR (date padded or not). */
export function findAdvert(adverts: Advert[], path: string): Advert | undefined {
  const [hub, date, operator] = path.split("/").filter(Boolean);
  const wanted = date && (normalizeDate(date) ?? date);
  return adverts.find((a) => keyHub(a) === hub && a.date === wanted && keyOperator(a) === operator);
}

/** Other operators advertising in the hub (the hub's peers), by name. */
export function hubPeers(adverts: Advert[], hub: string, self: string): string[] {
  return unique(adverts.filter((a) => keyHub(a) === hub && keyOperator(a) !== self).map(keyOperator));
}

/** Parses `k=v` flags into tags; throws naming the flag when one has no `=`. */
export function parseTags(pairs: string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new Error(`--tag ${pair}: expected key=value`);
    tags[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return tags;
}

/** The hub and operator as the key says (the value may disagree in an old or foreign advert). */
function keyHub(advert: Advert): string {
  return advert.key.split("/").at(-3) ?? advert.hub;
}

function keyOperator(advert: Advert): string {
  return advert.key.split("/").at(-1) ?? advert.operator;
}

function sortAdverts(adverts: Advert[]): Advert[] {
  return [...adverts].sort((a, b) => byCodeUnits(b.date, a.date) || byCodeUnits(a.key, b.key));
}

function unique(values: string[]): string[] {
  return [...new Set(values)].sort();
}

/**
 * Whether an advert already under the key may be replaced by this publisher: the key is
 * free, held by the publisher's own lease, or advertises the same repository (a re-publish).
 */
export function mayReplace(
  existing: { lease?: string; url: string } | undefined,
  ours: { lease?: string; url: string },
  sameRepo: (a: string, b: string) => boolean,
): boolean {
  if (!existing) return true;
  if (ours.lease && existing.lease === ours.lease) return true;
  return sameRepo(existing.url, ours.url);
}

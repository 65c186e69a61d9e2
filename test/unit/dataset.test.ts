import assert from "node:assert/strict";
import {
  advertDate,
  advertKey,
  findAdvert,
  hubPeers,
  listAdverts,
  mayReplace,
  normalizeDate,
  parseAdvert,
  parseTags,
  type Advert,
} from "../../src/dataset/advert.js";
import { parseOldConfig } from "../../src/dataset/config.js";

const PREFIX = "/gitsync/datasets";

function anAdvert(hub: string, date: string, operator: string, more: Partial<Advert> = {}): Advert {
  const key = advertKey(PREFIX, hub, date, operator);
  const advert = parseAdvert(
    PREFIX,
    key,
    JSON.stringify({ url: `https://git.example.com/${operator}/${hub}.git`, hub, operator, commit: "a".repeat(40), ...more }),
  );
  assert.ok(advert);
  return advert;
}

describe("dataset adverts", () => {
  it("writes today's date in UTC, zero-padded, so that keys sort", () => {
    assert.equal(advertDate(new Date("2026-03-07T23:30:00-05:00")), "2026-03-08");
    assert.equal(advertKey("/gitsync/datasets/", "weather", "2026-03-08", "lab-a"), "/gitsync/datasets/weather/2026-03-08/lab-a");
  });

  const dates: [string, string | undefined][] = [
    ["2026-3-7", "2026-03-07"],
    ["2026-03-07", "2026-03-07"],
    ["2026-12-1", "2026-12-01"],
    ["yesterday", undefined],
  ];
  for (const [segment, expected] of dates) it(`reads the date segment ${segment} as ${expected}`, () => assert.equal(normalizeDate(segment), expected));

  it("reads the old tool's plain-URL value under an unpadded date", () => {
    const advert = parseAdvert(PREFIX, `${PREFIX}/weather/2024-3-7/lab-old`, "https://git.example.com/lab/weather.git");
    assert.deepEqual(
      [advert?.url, advert?.hub, advert?.operator, advert?.date, advert?.commit],
      ["https://git.example.com/lab/weather.git", "weather", "lab-old", "2024-03-07", undefined],
    );
  });

  it("ignores keys outside the layout", () => {
    assert.equal(parseAdvert(PREFIX, `${PREFIX}/weather/lab-a`, "{}"), undefined);
    assert.equal(parseAdvert(PREFIX, "/other/weather/2026-01-01/lab-a", "{}"), undefined);
  });

  it("takes hub and operator from the key, and refuses names that are no plain folder name", () => {
    const value = (fields: object): string => JSON.stringify({ url: "https://h/r.git", hub: "w", operator: "x", ...fields });
    const advert = parseAdvert(PREFIX, `${PREFIX}/w/2026-01-01/x`, value({ hub: "../../tmp", operator: "../y" }));
    assert.deepEqual([advert?.hub, advert?.operator], ["w", "x"]);
    assert.equal(parseAdvert(PREFIX, `${PREFIX}/../2026-01-01/x`, value({})), undefined);
    assert.equal(parseAdvert(PREFIX, `${PREFIX}/w/2026-01-01/.hidden`, value({})), undefined);
    assert.match(parseAdvert(PREFIX, `${PREFIX}/w/2026-01-01/x`, value({ commit: "--upload-pack=x" }))?.unreadable ?? "", /value\.commit/);
    assert.match(parseAdvert(PREFIX, `${PREFIX}/w/2026-01-01/x`, value({ url: "file:///etc" }))?.unreadable ?? "", /value\.url/);
    assert.equal(parseAdvert(PREFIX, `${PREFIX}/w/2026-01-01/x`, value({ commit: "a".repeat(40) }))?.unreadable, undefined);
  });

  it("says which advert could not be read rather than failing the listing", () => {
    assert.match(parseAdvert(PREFIX, `${PREFIX}/w/2026-01-01/x`, '{"url": 5}')?.description ?? "", /unreadable advert: value\.url/);
  });

  const all = [
    anAdvert("weather", "2026-03-07", "lab-a", { tags: { domain: "climate" } }),
    anAdvert("weather", "2026-03-08", "lab-b"),
    anAdvert("ocean", "2026-03-08", "lab-a"),
  ];

  it("lists hubs, then dates newest first, then the adverts of a date", () => {
    assert.deepEqual(listAdverts(all, undefined), { level: "hubs", hubs: ["ocean", "weather"] });
    assert.deepEqual(listAdverts(all, "weather"), { level: "dates", hub: "weather", dates: ["2026-03-08", "2026-03-07"] });
    const adverts = listAdverts(all, "weather/2026-3-7");
    assert.equal(adverts.level, "adverts");
    assert.deepEqual(adverts.level === "adverts" && adverts.adverts.map((a) => a.operator), ["lab-a"]);
  });

  it("filters by tag across hubs", () => {
    const tagged = listAdverts(all, undefined, parseTags(["domain=climate"]));
    assert.deepEqual(tagged.level === "adverts" && tagged.adverts.map((a) => a.key), [`${PREFIX}/weather/2026-03-07/lab-a`]);
    assert.throws(() => parseTags(["domain"]), /--tag domain: expected key=value/);
  });

  it("finds HUB/DATE/OPERATOR with a padded or unpadded date, and the hub's peers", () => {
    assert.equal(findAdvert(all, "weather/2026-3-8/lab-b")?.key, `${PREFIX}/weather/2026-03-08/lab-b`);
    assert.equal(findAdvert(all, "weather/2026-03-08/lab-z"), undefined);
    assert.deepEqual(hubPeers(all, "weather", "lab-a"), ["lab-b"]);
  });

  const replace: [string, { lease?: string; url: string } | undefined, boolean][] = [
    ["a free key", undefined, true],
    ["a key on the publisher's own lease", { lease: "7", url: "https://other.example/x.git" }, true],
    ["a re-publish of the same repository", { lease: "9", url: "https://git.example.com/lab/weather" }, true],
    ["another publisher's key", { lease: "9", url: "https://other.example/x.git" }, false],
  ];
  for (const [name, existing, expected] of replace) {
    it(`${expected ? "may replace" : "never replaces"} ${name}`, () => {
      const sameRepo = (a: string, b: string): boolean => a.replace(/\.git$/, "") === b.replace(/\.git$/, "");
      assert.equal(mayReplace(existing, { lease: "7", url: "https://git.example.com/lab/weather.git" }, sameRepo), expected);
    });
  }
});

describe("the old tool's config.ini", () => {
  it("reads WORKDIR, OPERATOR, IMPORTDIR and the etcd HOST and PORT", () => {
    const config = parseOldConfig(
      "config.ini",
      "[WORKING_ENVIRONMENT]\nWORKDIR = /data/work\nOPERATOR = lab-a\nIMPORTDIR = /data/imports\n\n[ETCD]\nHOST = etcd.lab\nPORT = 2379\n",
    );
    assert.deepEqual(config, { workDir: "/data/work", operator: "lab-a", importDir: "/data/imports", endpoint: "http://etcd.lab:2379" });
  });

  it("takes a scheme on HOST for TLS", () => {
    assert.equal(parseOldConfig("c.ini", "[ETCD]\nHOST = https://etcd.lab\nPORT = 2379\n").endpoint, "https://etcd.lab:2379");
  });

  it("names the file, section and key of a bad value", () => {
    assert.throws(() => parseOldConfig("config.ini", "[ETCD]\nHOST = etcd.lab\nPORT = twenty\n"), /config\.ini: \[ETCD\] PORT: "twenty" is not a port number/);
  });
});

// Paths inside repositories and buckets, as users write them ("/logs/", "conf/").

/** The path without leading or trailing slashes: "/a/b/" → "a/b". */
export function trimSlashes(path: string): string {
  return path.replace(/^\/+|\/+$/g, "");
}

/** The parts joined with single slashes, empty parts left out: ("/a/", "", "b") → "a/b". */
export function joinPath(...parts: string[]): string {
  return parts.map(trimSlashes).filter(Boolean).join("/");
}

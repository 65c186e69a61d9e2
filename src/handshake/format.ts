// The ways `gitsync handshake check` reports a result: a table for people, JSON for tools,
// JUnit (one test case per edge) for CI dashboards, and GitHub workflow annotations.

import type { HandshakeResult } from "./check.js";

export type OutputFormat = "text" | "json" | "junit" | "github";

export function formatResult(result: HandshakeResult, format: OutputFormat): string {
  switch (format) {
    case "json":
      return `${JSON.stringify({ handshake: result.handshake, mode: result.mode, services: result.services, warnings: result.warnings }, null, 2)}\n`;
    case "junit":
      return junit(result);
    case "github":
      return github(result);
    case "text":
      return text(result);
  }
}

function text(result: HandshakeResult): string {
  const rows = result.services.map((s) => [s.label, s.version ?? "-", s.handshake ? "ok" : "FAILED", s.failures.map((f) => f.reason).join(", ") || "-"]);
  const header = ["SERVICE", "VERSION", "HANDSHAKE", "FAILURES"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  const failures = result.services.flatMap((s) => s.failures.map((f) => `  - ${f.reason}: ${f.message}`));
  return [
    line(header),
    ...rows.map(line),
    "",
    ...(failures.length ? ["Failures:", ...failures, ""] : []),
    ...(result.warnings.length ? ["Warnings:", ...result.warnings.map((w) => `  - ${w}`), ""] : []),
    `Handshake ${result.handshake ? "succeeded" : "failed"} (${result.mode}): ${result.services.filter((s) => s.handshake).length}/${result.services.length} services agree`,
    "",
  ].join("\n");
}

function junit(result: HandshakeResult): string {
  const failed = result.edges.filter((e) => e.failures.length > 0).length;
  const cases = result.edges.map((edge) => {
    const name = xml(`${edge.from} -> ${edge.to}`);
    if (edge.failures.length === 0) return `    <testcase classname="handshake.${xml(edge.from)}" name="${name}"/>`;
    const failures = edge.failures.map((f) => `      <failure type="${f.reason}" message="${xml(f.message)}"/>`).join("\n");
    return `    <testcase classname="handshake.${xml(edge.from)}" name="${name}">\n${failures}\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="gitsync handshake" tests="${result.edges.length}" failures="${failed}">`,
    `  <testsuite name="handshake (${result.mode})" tests="${result.edges.length}" failures="${failed}">`,
    ...cases,
    ...(result.warnings.length ? [`    <system-out>${result.warnings.map((w) => `Warning: ${xml(w)}`).join("\n")}</system-out>`] : []),
    "  </testsuite>",
    "</testsuites>",
    "",
  ].join("\n");
}

function github(result: HandshakeResult): string {
  const escape = (text: string): string => text.replace(/%/g, "%25").replace(/\r?\n/g, "%0A");
  const lines = result.warnings.map((w) => `::warning title=Duplicate service name::${escape(w)}`);
  lines.push(...result.services.flatMap((s) => s.failures.map((f) => `::error title=${f.reason} (${s.label} -> ${f.dependency})::${escape(f.message)}`)));
  lines.push(
    result.handshake
      ? `::notice title=Handshake succeeded::${result.services.length} services agree (${result.mode})`
      : `::error title=Handshake failed::${result.services.filter((s) => !s.handshake).length} of ${result.services.length} services disagree (${result.mode})`,
  );
  return `${lines.join("\n")}\n`;
}

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

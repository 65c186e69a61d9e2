// Container images without Docker or a registry: a folder becomes one layer of an OCI image
// layout, written as a tar archive that `ctr images import` takes. Go programs are built
// static from hack/images/<name>; nothing is downloaded.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { create as createTar } from "tar";

export interface ImageSpec {
  /** The full reference pods use, e.g. gitsync.local/testapp:dev (pulled never). */
  name: string;
  /** The folder whose content is the image's file system. */
  root: string;
  entrypoint: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
}

const ROOT = path.resolve(import.meta.dirname, "../../..");
const HACK = path.join(ROOT, "hack");
export const OPERATOR_IMAGE = "gitsync.local/gitsync-operator:dev";
/** The non-root user the operator runs as (the chart sets runAsNonRoot). */
const OPERATOR_UID = 65532;

/** Builds hack/images/<program> as a static linux/amd64 binary into `out`. */
export function buildGoProgram(program: string, out: string): void {
  execFileSync("go", ["build", "-trimpath", "-ldflags=-s -w", "-o", out, "."], {
    cwd: path.join(HACK, "images", program),
    env: { ...process.env, CGO_ENABLED: "0", GOOS: "linux", GOARCH: "amd64", GOTOOLCHAIN: "local", GOFLAGS: "-buildvcs=false" },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** An image holding one static Go program from hack/images, run as its entrypoint. */
export async function goProgramImage(program: string, name: string, archive: string): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), `gitsync-image-${program}-`));
  try {
    buildGoProgram(program, path.join(root, program));
    mkdirSync(path.join(root, "tmp"), { mode: 0o1777 });
    await writeOciArchive({ name, root, entrypoint: [`/${program}`] }, archive);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The operator's image as an OCI archive (built from `source`: this checkout, or an earlier release's), and its SBOM (CycloneDX JSON) beside it and inside it at
 * /app/sbom.cdx.json: every npm package the image holds, from OWASP's cyclonedx-npm, and the
 * Node.js runtime. Returns the SBOM's path.
 */
export async function operatorImage(archive: string, name = OPERATOR_IMAGE, source = ROOT): Promise<string> {
  const root = mkdtempSync(path.join(os.tmpdir(), "gitsync-image-operator-"));
  try {
    // The `node` devDependency's binary (Node.js 24), whatever Node runs this build.
    copyWithLibraries(realpathSync(path.join(ROOT, "node_modules/.bin/node")), path.join(root, "usr/local/bin/node"), root);
    const app = path.join(root, "app");
    mkdirSync(app, { recursive: true });
    for (const file of ["package.json", "package-lock.json"]) copyFileSync(path.join(source, file), path.join(app, file));
    cpSync(path.join(source, "dist/src"), path.join(app, "dist/src"), { recursive: true });
    execFileSync("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: app,
      stdio: ["ignore", "ignore", "inherit"],
    });
    execFileSync(process.execPath, [path.join(source, "hack/patch-deps.mjs"), path.join(app, "node_modules")], { stdio: ["ignore", "ignore", "inherit"] });
    const sbom = path.join(app, "sbom.cdx.json");
    execFileSync(
      process.execPath,
      [path.join(ROOT, "node_modules/@cyclonedx/cyclonedx-npm/bin/cyclonedx-npm-cli.js"), "--omit", "dev", "--output-format", "JSON", "--output-file", sbom],
      { cwd: app, stdio: ["ignore", "ignore", "inherit"] },
    );
    addRuntime(sbom, realpathSync(path.join(ROOT, "node_modules/.bin/node")));
    rmSync(path.join(app, "package-lock.json"));
    // `gitsync` and `kubectl-gitsync` on the image's PATH (kubectl exec ... -- gitsync get): launchers
    // that need no shell, run by the image's own Node.js.
    for (const command of ["gitsync", "kubectl-gitsync"]) {
      writeFileSync(path.join(root, "usr/local/bin", command), '#!/usr/local/bin/node\nimport("/app/dist/src/main.js");\n', { mode: 0o755 });
    }
    mkdirSync(path.join(root, "etc"));
    writeFileSync(path.join(root, "etc/passwd"), `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${OPERATOR_UID}:${OPERATOR_UID}::/work:/sbin/nologin\n`);
    writeFileSync(path.join(root, "etc/group"), `root:x:0:\nnonroot:x:${OPERATOR_UID}:\n`);
    for (const dir of ["tmp", "work"]) mkdirSync(path.join(root, dir), { mode: 0o1777 });
    await writeOciArchive(
      {
        name,
        root,
        entrypoint: ["/usr/local/bin/node", "/app/dist/src/main.js"],
        env: ["NODE_ENV=production", "PATH=/usr/local/bin:/usr/bin:/bin"],
        workingDir: "/app",
        user: `${OPERATOR_UID}:${OPERATOR_UID}`,
      },
      archive,
    );
    const beside = archive.replace(/(\.oci)?\.tar$/, "") + ".sbom.cdx.json";
    copyFileSync(path.join(root, "app/sbom.cdx.json"), beside);
    return beside;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Adds the Node.js binary the image runs to the SBOM: cyclonedx-npm knows only npm packages. */
function addRuntime(sbom: string, node: string): void {
  const bom = JSON.parse(readFileSync(sbom, "utf8")) as { components?: object[] };
  const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim().replace(/^v/, "");
  bom.components = [
    ...(bom.components ?? []),
    { type: "platform", name: "node", version, purl: `pkg:generic/node@${version}`, description: "The Node.js runtime at /usr/local/bin/node" },
  ];
  writeFileSync(sbom, `${JSON.stringify(bom, null, 2)}\n`);
}

/** Copies a dynamically linked binary and every library ldd names to the same paths under root. */
function copyWithLibraries(binary: string, target: string, root: string): void {
  mkdirSync(path.dirname(target), { recursive: true });
  copyFileSync(binary, target);
  const libraries = execFileSync("ldd", [binary], { encoding: "utf8" })
    .split("\n")
    .flatMap((line) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1] ?? []);
  for (const library of libraries) {
    const into = path.join(root, library);
    mkdirSync(path.dirname(into), { recursive: true });
    copyFileSync(library, into);
  }
}

/** An image holding one static binary (e.g. CoreDNS from the tool cache) as its entrypoint. */
export async function binaryImage(binary: string, name: string, archive: string): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), "gitsync-image-binary-"));
  try {
    const program = path.basename(name.split(":")[0] ?? "program");
    copyFileSync(binary, path.join(root, program));
    chmodSync(path.join(root, program), 0o755);
    mkdirSync(path.join(root, "tmp"), { mode: 0o1777 });
    await writeOciArchive({ name, root, entrypoint: [`/${program}`] }, archive);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Writes the OCI image layout of `spec` as a tar archive at `archive`. */
export async function writeOciArchive(spec: ImageSpec, archive: string): Promise<void> {
  const layout = mkdtempSync(path.join(os.tmpdir(), "gitsync-oci-"));
  try {
    const blobs = path.join(layout, "blobs", "sha256");
    mkdirSync(blobs, { recursive: true });
    const blob = (data: Buffer): { digest: string; size: number } => {
      const hex = createHash("sha256").update(data).digest("hex");
      writeFileSync(path.join(blobs, hex), data);
      return { digest: `sha256:${hex}`, size: data.length };
    };
    const layerFile = path.join(layout, "layer.tar");
    await createTar({ file: layerFile, cwd: spec.root, portable: true, noMtime: true }, readdirSync(spec.root).sort());
    const layer = blob(readFileSync(layerFile));
    rmSync(layerFile);
    const config = blob(Buffer.from(JSON.stringify(imageConfig(spec, layer.digest))));
    const manifest = blob(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
          layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
        }),
      ),
    );
    const tag = spec.name.split(":").at(-1) ?? "latest";
    const index = {
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "io.containerd.image.name": spec.name, "org.opencontainers.image.ref.name": tag },
        },
      ],
    };
    writeFileSync(path.join(layout, "index.json"), JSON.stringify(index));
    writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    await createTar({ file: archive, cwd: layout, portable: true }, ["oci-layout", "index.json", "blobs"]);
  } finally {
    rmSync(layout, { recursive: true, force: true });
  }
}

function imageConfig(spec: ImageSpec, diffId: string): object {
  // An uncompressed layer's diff id is its own digest.
  return {
    architecture: "amd64",
    os: "linux",
    config: {
      Entrypoint: spec.entrypoint,
      Cmd: spec.cmd,
      Env: ["PATH=/usr/local/bin:/usr/bin:/bin", ...(spec.env ?? [])],
      WorkingDir: spec.workingDir ?? "/",
      User: spec.user,
    },
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created_by: "hack/env/images.ts" }],
  };
}

// Lint carries design pressure: promises are awaited, exported functions say what they
// return, functions stay small, and imports point one way (ARCHITECTURE.md, "Layout"):
//   cli → controllers → engines → domain (handshake, backup) and adapters (git, s3, etcd)
//   → util, with runtime (and crds) below the controllers and knowing no adapter.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const ADAPTER_LIBRARIES = [
  "isomorphic-git",
  "isomorphic-git/*",
  "@aws-sdk/*",
  "@smithy/*",
  "aws4",
  "fast-xml-parser",
  "ssh2",
  "etcd3",
  "@kubernetes/client-node",
];

/** Forbids relative imports of the named top-level folders of src/, and the named libraries. */
function layer(files, folders, libraries = []) {
  const patterns = [];
  if (folders.length) {
    patterns.push({
      regex: `^(\\.\\./)+(${folders.join("|")})/`,
      message: `${files[0].replace("/**", "")} must not import ${folders.join(", ")} (see ARCHITECTURE.md, Layout).`,
    });
  }
  if (libraries.length) patterns.push({ group: libraries, message: "Domain logic and the runtime take plain data; only adapters talk to these libraries." });
  return { files, rules: { "no-restricted-imports": ["error", { patterns }] } };
}

const DOMAIN = ["handshake", "backup", "compose", "dataset", "partition"];
const ADAPTERS = ["git", "s3", "etcd"];
const ABOVE_ADAPTERS = ["runtime", "engines", "webhooks", "controllers", "cli"];

export const layers = [
  layer(["src/util/**"], ["crds", ...ADAPTERS, ...DOMAIN, ...ABOVE_ADAPTERS], ADAPTER_LIBRARIES),
  layer(["src/crds/**"], [...ADAPTERS, ...DOMAIN, ...ABOVE_ADAPTERS], ADAPTER_LIBRARIES),
  layer(["src/handshake/**", "src/backup/**", "src/compose/**", "src/dataset/**", "src/partition/**"], [...ADAPTERS, ...ABOVE_ADAPTERS], ADAPTER_LIBRARIES),
  layer(["src/git/**", "src/s3/**", "src/etcd/**"], ["crds", ...DOMAIN, ...ABOVE_ADAPTERS]),
  layer(
    ["src/runtime/**"],
    [...ADAPTERS, ...DOMAIN, "engines", "webhooks", "controllers", "cli"],
    ["isomorphic-git", "isomorphic-git/*", "@aws-sdk/*", "etcd3"],
  ),
  layer(["src/engines/**"], ["runtime", "webhooks", "controllers", "cli"]),
  layer(["src/webhooks/**"], [...ADAPTERS, ...DOMAIN, "engines", "controllers", "cli"]),
  layer(["src/controllers/**"], ["cli"]),
  // A controller folder never imports another kind's folder.
  {
    files: ["src/controllers/*/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { regex: "^(\\.\\./)+cli/", message: "controllers must not import cli." },
            { regex: "^\\.\\./(?!\\.\\.)[^/]+/", message: "A controller never imports another kind's folder." },
          ],
        },
      ],
    },
  },
];

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "deploy/**", "hack/tools/**", "test/lint/fixtures/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/explicit-module-boundary-types": "error",
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-empty": ["error", { allowEmptyCatch: false }],
      "max-params": ["error", 5],
    },
  },
  {
    files: ["src/**/*.ts"],
    rules: {
      complexity: ["error", 20],
      "max-lines-per-function": ["error", { max: 80, skipBlankLines: true, skipComments: true }],
      "max-depth": ["error", 4],
    },
  },
  ...layers,
  {
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-unused-expressions": "off" },
  },
  { files: ["eslint.config.js", "hack/*.mjs"], ...tseslint.configs.disableTypeChecked },
  { files: ["hack/*.mjs"], languageOptions: { globals: { process: "readonly" } } },
);

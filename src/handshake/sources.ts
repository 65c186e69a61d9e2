// Which files make a service's manifests: service.yaml, contract.yaml (or an OpenAPI
// document) and interface.yaml, read through a function so that a folder, a kept clone or
// anything else can supply them. Shared by the controller and the CLI.

import { CONTRACT_FILES, OPENAPI_FILES, type ServiceFiles } from "./manifests.js";

/** Reads the known file names through `read`; the contract may be contract.yaml or an OpenAPI document. */
export async function collectServiceFiles(source: string, url: string | undefined, read: (name: string) => Promise<string | undefined>): Promise<ServiceFiles> {
  const files: ServiceFiles = { source, url, interface: (await read("interface.yaml")) ?? (await read("interface.yml")) };
  for (const name of ["service.yaml", "service.yml"]) {
    files.service ??= await read(name);
    if (files.service !== undefined) {
      files.serviceFile = name;
      break;
    }
  }
  for (const name of CONTRACT_FILES) files.contract ??= await read(name);
  if (files.contract === undefined) {
    for (const name of OPENAPI_FILES) {
      const text = await read(name);
      if (text !== undefined) {
        files.openapi = { name, text };
        break;
      }
    }
  }
  return files;
}

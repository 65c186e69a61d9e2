// `npm run image -- [ARCHIVE] [NAME]`: the operator's image as an OCI archive, without Docker
// (Node.js 24 from the `node` package with its shared libraries, dist/, production
// node_modules), and its SBOM (CycloneDX JSON, from OWASP's cyclonedx-npm) beside it. Push it
// with any OCI tool, e.g. `skopeo copy oci-archive:ARCHIVE docker://REF`.

import path from "node:path";
import { OPERATOR_IMAGE, operatorImage } from "./env/images.js";

const [archive = "gitsync-operator.oci.tar", name = OPERATOR_IMAGE] = process.argv.slice(2);
const sbom = await operatorImage(path.resolve(archive), name);
process.stdout.write(`Wrote ${name} to ${path.resolve(archive)}, and its SBOM to ${sbom}\n`);

// Certificates for the environment's servers, made with openssl: one CA per folder, and
// server certificates for the names and IPs clients (host or pod) use. Valid for a day.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface ServerCert {
  ca: string;
  cert: string;
  key: string;
}

/** A CA in `dir` (made once), and a server certificate `name` signed by it for the given SANs. */
export function serverCertificate(dir: string, name: string, sans: { ips: string[]; dns?: string[] }): ServerCert {
  const alt = [...sans.ips.map((ip) => `IP:${ip}`), ...(sans.dns ?? []).map((d) => `DNS:${d}`)].join(",");
  return signed(dir, name, `subjectAltName=${alt}\nextendedKeyUsage=serverAuth\n`);
}

/** A client certificate `name` (its CN) signed by the CA in `dir`, for servers that require one. */
export function clientCertificate(dir: string, name: string): ServerCert {
  return signed(dir, name, "extendedKeyUsage=clientAuth\n");
}

function signed(dir: string, name: string, extensions: string): ServerCert {
  mkdirSync(dir, { recursive: true });
  const at = (file: string): string => path.join(dir, file);
  const openssl = (args: string[]): void => void execFileSync("openssl", args, { stdio: "ignore" });
  if (!existsSync(at("ca.crt"))) {
    openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=gitsync-env-ca", "-keyout", at("ca.key"), "-out", at("ca.crt")]);
  }
  writeFileSync(at(`${name}.ext`), extensions);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${name}`, "-keyout", at(`${name}.key`), "-out", at(`${name}.csr`)]);
  openssl([
    "x509",
    "-req",
    "-in",
    at(`${name}.csr`),
    "-CA",
    at("ca.crt"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    at(`${name}.ext`),
    "-out",
    at(`${name}.crt`),
  ]);
  return { ca: at("ca.crt"), cert: at(`${name}.crt`), key: at(`${name}.key`) };
}

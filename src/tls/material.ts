// The Kubernetes endpoint's TLS material: created in the data dir on first start (a private CA
// and a serving certificate), or loaded from files the operator gives.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { BastionError, ErrorCode } from '../errors/index.js';
import { createCa, isIssuedBy, issueServingCert } from './ca.js';

export interface EndpointTls {
  cert: string;
  key: string;
  /** PEM written into issued kubeconfigs as certificate-authority-data (undefined: system roots). */
  caPem: string | undefined;
  origin: 'generated' | 'files';
}

export interface TlsFiles {
  certFile?: string;
  keyFile?: string;
  caFile?: string;
}

async function readFlagFile(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function coversHost(certPem: string, host: string): boolean {
  const cert = new X509Certificate(certPem);
  return /^[\d.]+$|:/.test(host) ? cert.checkIP(host) !== undefined : cert.checkHost(host) !== undefined;
}

/**
 * Loads or creates the serving material. Generated material lives in `<dataDir>/tls/` and is
 * reissued (same CA) when a listen host is not covered by the current certificate.
 */
export async function loadEndpointTls(dataDir: string, hosts: { dns: string[]; ips: string[] }, files: TlsFiles): Promise<EndpointTls> {
  if (files.certFile || files.keyFile) {
    if (!files.certFile || !files.keyFile) throw new BastionError(ErrorCode.CONFIG_INVALID, '--tls-cert and --tls-key go together');
    const cert = await readFlagFile('--tls-cert', files.certFile);
    const key = await readFlagFile('--tls-key', files.keyFile);
    const caPem = files.caFile ? await readFlagFile('--tls-ca', files.caFile) : undefined;
    if (caPem && !isIssuedBy(cert, caPem)) throw new BastionError(ErrorCode.CONFIG_INVALID, `--tls-ca ${files.caFile} did not issue --tls-cert ${files.certFile}`);
    return { cert, key, caPem, origin: 'files' };
  }
  const dir = join(dataDir, 'tls');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const paths = { caCert: join(dir, 'ca.crt'), caKey: join(dir, 'ca.key'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key') };
  let ca: { cert: string; key: string };
  if (existsSync(paths.caCert) && existsSync(paths.caKey)) {
    ca = { cert: await readFile(paths.caCert, 'utf8'), key: await readFile(paths.caKey, 'utf8') };
  } else {
    ca = await createCa('kube-bastion CA');
    await writeFile(paths.caKey, ca.key, { mode: 0o600 });
    await writeFile(paths.caCert, ca.cert);
  }
  if (existsSync(paths.cert) && existsSync(paths.key)) {
    const cert = await readFile(paths.cert, 'utf8');
    const valid = new Date(new X509Certificate(cert).validTo).getTime() > Date.now() + 86_400_000;
    if (valid && isIssuedBy(cert, ca.cert) && [...hosts.dns, ...hosts.ips].every((h) => coversHost(cert, h))) {
      return { cert, key: await readFile(paths.key, 'utf8'), caPem: ca.cert, origin: 'generated' };
    }
  }
  const serving = await issueServingCert(ca, hosts);
  await writeFile(paths.key, serving.key, { mode: 0o600 });
  await writeFile(paths.cert, serving.cert);
  return { cert: serving.cert, key: serving.key, caPem: ca.cert, origin: 'generated' };
}

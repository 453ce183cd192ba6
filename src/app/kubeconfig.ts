// Writes kubeconfig files that unmodified kubectl and client libraries use.
import { writeFile, mkdir, chmod } from 'node:fs/promises';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

export interface KubeconfigSpec {
  /** https://HOST:PORT */
  server: string;
  /** PEM of the CA that signed the server's certificate. */
  caPem: string;
  token: string;
  /** Name used for the cluster, user and context entries. */
  name: string;
  namespace?: string;
}

export function renderKubeconfig(spec: KubeconfigSpec): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: spec.name,
        cluster: { server: spec.server, 'certificate-authority-data': Buffer.from(spec.caPem).toString('base64') },
      },
    ],
    users: [{ name: spec.name, user: { token: spec.token } }],
    contexts: [
      {
        name: spec.name,
        context: { cluster: spec.name, user: spec.name, ...(spec.namespace ? { namespace: spec.namespace } : {}) },
      },
    ],
    'current-context': spec.name,
  });
}

/** Writes the kubeconfig with owner-only permissions (it holds a bearer token). */
export async function writeKubeconfig(path: string, spec: KubeconfigSpec): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, renderKubeconfig(spec), { mode: 0o600 });
  await chmod(path, 0o600);
}

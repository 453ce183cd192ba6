// Reads a pod from upstream with the bastion's credentials, to resolve the container before any
// scope check: explicit name, else the default-container annotation, else the first container.
import https from 'node:https';
import { droppedReusedConnection, upstreamRequestOptions, upstreamUnreachable } from './upstream.js';
import { decodeStatus, type Status } from '../protocol/status.js';
import { upstreamPath } from './rest-proxy.js';
import type { UpstreamTarget } from './upstream.js';

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export interface PodSummary {
  name: string;
  namespace: string;
  containers: string[];
  initContainers: string[];
  ephemeralContainers: string[];
  defaultContainer?: string;
}

/** Not found or refused upstream: upstream's own Status when it sent one (it always does), else just its HTTP code. */
export type PodLookup = { ok: true; pod: PodSummary } | { ok: false; httpStatus: number; status: Status | undefined };

const MAX_POD_BYTES = 4 * 1024 * 1024;

export async function getPod(upstream: UpstreamTarget, namespace: string, name: string): Promise<PodLookup> {
  const base = await upstreamRequestOptions(upstream);
  const target = new URL(upstream.server);
  const path = upstreamPath(upstream.server, `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`);
  const once = (): Promise<{ code: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = https.request(
        { ...base, protocol: 'https:', hostname: target.hostname.replace(/^\[|\]$/g, ''), port: target.port || 443, method: 'GET', path, headers: { ...(base.headers ?? {}), Accept: 'application/json' } },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_POD_BYTES) req.destroy(new Error('pod object too large'));
            else chunks.push(c);
          });
          res.on('end', () => resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reusedSocket: req.reusedSocket })));
      req.end();
    });
  // A kept-alive connection the server closed just as it was reused fails before any answer (a
  // race a busy event loop widens): the lookup is a GET, so it is tried once more on a new one.
  const { code, body } = await once()
    .catch((err: NodeJS.ErrnoException & { reusedSocket?: boolean }) => {
      if (droppedReusedConnection(err.reusedSocket, err)) return once();
      throw err;
    })
    .catch((err: Error) => {
      throw upstreamUnreachable(err);
    });
  if (code !== 200) {
    try {
      return { ok: false, httpStatus: code, status: { ...decodeStatus(body), code } };
    } catch {
      return { ok: false, httpStatus: code, status: undefined };
    }
  }
  const pod = JSON.parse(body.toString('utf8')) as {
    metadata?: { annotations?: Record<string, string> };
    spec?: { containers?: Array<{ name: string }>; initContainers?: Array<{ name: string }>; ephemeralContainers?: Array<{ name: string }> };
  };
  const names = (list?: Array<{ name: string }>) => (list ?? []).map((c) => c.name);
  const annotation = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  return {
    ok: true,
    pod: {
      name,
      namespace,
      containers: names(pod.spec?.containers),
      initContainers: names(pod.spec?.initContainers),
      ephemeralContainers: names(pod.spec?.ephemeralContainers),
      ...(annotation ? { defaultContainer: annotation } : {}),
    },
  };
}

export type ContainerResolution = { ok: true; container: string } | { ok: false; reason: 'unknown-container'; container: string } | { ok: false; reason: 'no-containers' };

/**
 * The container a request reaches: the explicit one (which must exist), else the annotated
 * default (if it names a container), else the first. A typed refusal when none fits.
 */
export function resolveContainer(pod: PodSummary, requested: string): ContainerResolution {
  const all = [...pod.containers, ...pod.initContainers, ...pod.ephemeralContainers];
  if (requested !== '') {
    if (all.includes(requested)) return { ok: true, container: requested };
    return { ok: false, reason: 'unknown-container', container: requested };
  }
  if (pod.defaultContainer && all.includes(pod.defaultContainer)) return { ok: true, container: pod.defaultContainer };
  const first = pod.containers[0];
  if (first !== undefined) return { ok: true, container: first };
  return { ok: false, reason: 'no-containers' };
}

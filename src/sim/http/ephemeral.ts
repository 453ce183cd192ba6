// pods/ephemeralcontainers, what `kubectl debug` patches: GET returns the pod; PATCH (strategic
// merge, JSON merge or JSON patch of spec.ephemeralContainers) and PUT may only add containers,
// as the API server's validation allows; each new one is then started as a real process.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KubeObject, ObjectStore } from '../store.js';
import { readJsonBody } from './body.js';
import { ApiError, sendJson } from './respond.js';

interface EphemeralContainer {
  name: string;
  [key: string]: unknown;
}

export interface EphemeralContext {
  store: ObjectStore;
  /** Runs the pod's new ephemeral containers. */
  afterChange(pod: KubeObject): Promise<void>;
}

/** Fields the API server defaults on an ephemeral container; kubectl reads them back. */
const CONTAINER_DEFAULTS = { imagePullPolicy: 'IfNotPresent', resources: {}, terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File' };

export async function serveEphemeralContainers(req: IncomingMessage, res: ServerResponse, namespace: string, name: string, ctx: EphemeralContext): Promise<void> {
  const pod = ctx.store.get('pods', namespace, name);
  if (!pod) throw ApiError.notFound('pods', name);
  if (req.method === 'GET') return sendJson(res, 200, pod);
  if (req.method !== 'PATCH' && req.method !== 'PUT') {
    throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
  }
  const body = await readJsonBody(req);
  const current = ephemeralOf(pod);
  const wanted = req.method === 'PUT' ? fromPut(body) : fromPatch(req.headers['content-type'], body, current);
  const added = checkOnlyAdded(name, current, wanted);
  if (added.length > 0) {
    (pod.spec as Record<string, unknown>).ephemeralContainers = wanted.map((c) => ({ ...CONTAINER_DEFAULTS, ...c }));
    ctx.store.update('pods', pod);
    await ctx.afterChange(ctx.store.get('pods', namespace, name) ?? pod);
  }
  sendJson(res, 200, ctx.store.get('pods', namespace, name) ?? pod);
}

function ephemeralOf(pod: KubeObject): EphemeralContainer[] {
  return ((pod.spec as { ephemeralContainers?: EphemeralContainer[] } | undefined)?.ephemeralContainers ?? []).map((c) => ({ ...c }));
}

function fromPut(body: unknown): EphemeralContainer[] {
  if (typeof body !== 'object' || body === null) throw ApiError.badRequest('request body must be a JSON object');
  const obj = body as { kind?: unknown; spec?: { ephemeralContainers?: unknown } };
  if (obj.kind !== 'Pod') {
    // What kubectl's legacy fallback (the EphemeralContainers kind of 1.16-1.21) gets from a current server.
    throw new ApiError(400, 'BadRequest', `no kind "${String(obj.kind)}" is registered for version "v1" in scheme "k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30"`);
  }
  return containerList(obj.spec?.ephemeralContainers ?? []);
}

function fromPatch(contentType: string | undefined, body: unknown, current: EphemeralContainer[]): EphemeralContainer[] {
  const type = (contentType ?? '').split(';', 1)[0]!.trim();
  if (type === 'application/json-patch+json') return applyJsonPatch(body, current);
  if (type !== 'application/strategic-merge-patch+json' && type !== 'application/merge-patch+json') {
    throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
  }
  if (typeof body !== 'object' || body === null) throw ApiError.badRequest('request body must be a JSON object');
  const patched = (body as { spec?: { ephemeralContainers?: unknown } }).spec?.ephemeralContainers;
  if (patched === undefined) return current;
  const list = containerList(patched);
  // A JSON merge patch replaces the list; a strategic one merges it by name.
  if (type === 'application/merge-patch+json') return list;
  const merged = current.map((c) => ({ ...c }));
  for (const entry of list) {
    const existing = merged.find((c) => c.name === entry.name);
    if (existing) Object.assign(existing, entry);
    else merged.push(entry);
  }
  return merged;
}

/** The one JSON patch kubectl-like clients send: `add` to /spec/ephemeralContainers(/-). */
function applyJsonPatch(body: unknown, current: EphemeralContainer[]): EphemeralContainer[] {
  if (!Array.isArray(body)) throw ApiError.badRequest('a JSON patch must be a list of operations');
  const result = current.map((c) => ({ ...c }));
  for (const op of body as Array<{ op?: unknown; path?: unknown; value?: unknown }>) {
    if (op.op === 'add' && op.path === '/spec/ephemeralContainers/-') result.push(...containerList([op.value]));
    else if (op.op === 'add' && op.path === '/spec/ephemeralContainers') result.splice(0, result.length, ...containerList(op.value));
    else throw new ApiError(422, 'Invalid', `the simulated cluster only applies "add" operations on /spec/ephemeralContainers`);
  }
  return result;
}

function containerList(value: unknown): EphemeralContainer[] {
  if (!Array.isArray(value)) throw ApiError.badRequest('spec.ephemeralContainers must be a list');
  return value.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null || typeof (entry as { name?: unknown }).name !== 'string' || (entry as { name: string }).name === '') {
      throw invalid('', `spec.ephemeralContainers[${i}].name: Required value`);
    }
    const out: EphemeralContainer = { ...(entry as EphemeralContainer) };
    for (const key of Object.keys(out)) if (key.startsWith('$')) delete out[key];
    return out;
  });
}

/** Existing ephemeral containers may be neither changed nor removed (ValidatePodEphemeralContainersUpdate). */
function checkOnlyAdded(podName: string, current: EphemeralContainer[], wanted: EphemeralContainer[]): EphemeralContainer[] {
  for (const old of current) {
    const now = wanted.find((c) => c.name === old.name);
    if (!now || JSON.stringify(now) !== JSON.stringify(old)) {
      throw invalid(podName, `spec.ephemeralContainers: Forbidden: existing ephemeral containers "${old.name}" may not be changed`);
    }
  }
  const names = new Set<string>();
  for (const [i, c] of wanted.entries()) {
    if (names.has(c.name)) throw invalid(podName, `spec.ephemeralContainers[${i}].name: Duplicate value: "${c.name}"`);
    names.add(c.name);
  }
  return wanted.filter((c) => !current.some((old) => old.name === c.name));
}

function invalid(podName: string, cause: string): ApiError {
  return new ApiError(422, 'Invalid', `Pod "${podName}" is invalid: ${cause}`, { name: podName, kind: 'Pod' });
}

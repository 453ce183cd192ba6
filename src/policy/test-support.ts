// Builders for KubeRequest values in policy tests (the shapes the request parser produces).
import type { NonResourceRequest, Principal, ResourceRequest, ResourceVerb, StreamOperation } from '../model/request.js';

export interface ResourceOptions {
  group?: string;
  version?: string;
  sub?: string;
  ns?: string;
  name?: string;
  stream?: StreamOperation;
  method?: string;
  proxyPath?: string;
}

const METHOD: Record<ResourceVerb, string> = {
  get: 'GET',
  list: 'GET',
  watch: 'GET',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  delete: 'DELETE',
  deletecollection: 'DELETE',
};

export function resourceRequest(verb: ResourceVerb, resource: string, o: ResourceOptions = {}): ResourceRequest {
  const group = o.group ?? '';
  const version = o.version ?? 'v1';
  const prefix = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  const path =
    prefix +
    (o.ns ? `/namespaces/${o.ns}` : '') +
    `/${resource}` +
    (o.name ? `/${o.name}` : '') +
    (o.sub ? `/${o.sub}` : '') +
    (o.proxyPath ? `/${o.proxyPath}` : '');
  return {
    kind: 'resource',
    method: o.method ?? METHOD[verb],
    path,
    verb,
    apiGroup: group,
    apiVersion: version,
    resource,
    subresource: o.sub ?? '',
    namespace: o.ns ?? '',
    name: o.name ?? '',
    proxyPath: o.proxyPath ?? '',
    ...(o.stream === undefined ? {} : { stream: o.stream }),
    query: new URLSearchParams(),
  };
}

/** exec/attach/portforward as the parser reports them: verb create, whatever the HTTP method. */
export function streamRequest(stream: StreamOperation, method: 'GET' | 'POST', ns: string, pod: string): ResourceRequest {
  return resourceRequest('create', 'pods', { sub: stream, ns, name: pod, stream, method });
}

/** An exec whose argv is `argv`: repeated `command` query parameters, as kubectl sends them. */
export function execRequest(ns: string, pod: string, argv: readonly string[], method: 'GET' | 'POST' = 'GET'): ResourceRequest {
  const req = streamRequest('exec', method, ns, pod);
  for (const arg of argv) req.query.append('command', arg);
  req.query.append('container', 'app');
  return req;
}

export function nonResourceRequest(method: string, path: string): NonResourceRequest {
  const m = method.toUpperCase();
  return { kind: 'nonResource', method: m, path, verb: m === 'GET' || m === 'HEAD' ? 'get' : m.toLowerCase(), query: new URLSearchParams() };
}

export const agent: Principal = { kind: 'agent', id: 'agt_01', name: 'claude-1' };

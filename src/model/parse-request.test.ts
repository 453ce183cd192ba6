import { describe, expect, it } from 'vitest';
import { CLIENT_NODE_EXEC_QUERY, CORPUS, KUBECTL_EXEC_ARGV, KUBECTL_EXEC_QUERY, type CorpusCase } from '../../test/fixtures/request-corpus.js';
import { mulberry32 } from '../../test/helpers/prng.js';
import { formatKubePath, MAX_PATH_LENGTH, PARSE_REFUSAL_REASONS, parseKubeRequest } from './parse-request.js';
import type { KubeRequest, ParseResult } from './request.js';

function describeCase(c: CorpusCase): string {
  const url = c.url.length > 100 ? `${c.url.slice(0, 100)}…(${c.url.length})` : c.url;
  return `${c.method} ${JSON.stringify(url)} → ${'refuse' in c ? `refuse ${c.refuse}` : `${c.expect.kind} ${c.expect.verb}`}`;
}

function shapeOf(request: KubeRequest): Record<string, unknown> {
  if (request.kind === 'nonResource') return { kind: request.kind, verb: request.verb };
  return {
    kind: request.kind,
    verb: request.verb,
    apiGroup: request.apiGroup,
    apiVersion: request.apiVersion,
    resource: request.resource,
    subresource: request.subresource,
    namespace: request.namespace,
    name: request.name,
    proxyPath: request.proxyPath,
    stream: request.stream,
  };
}

function rawPathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function rawQueryOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q);
}

// ---------------------------------------------------------------------------------------------
// An independent, literal re-implementation of kube-apiserver's RequestInfoFactory.NewRequestInfo
// (k8s.io/apiserver pkg/endpoints/request/requestinfo.go) with APIPrefixes {api, apis} and
// GrouplessAPIPrefixes {api}. Used only to check that whatever the bastion ACCEPTS, the API server
// classifies the same way. It is fed only accepted targets, whose paths contain no percent-escapes,
// so the raw path equals Go's decoded req.URL.Path.
// ---------------------------------------------------------------------------------------------
interface ApiserverInfo {
  isResourceRequest: boolean;
  verb: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
}

function apiserverRequestInfo(method: string, url: string): ApiserverInfo | 'error' {
  const path = rawPathOf(url);
  const info: ApiserverInfo = {
    isResourceRequest: false,
    verb: method.toLowerCase(),
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
  };
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  let parts = trimmed === '' ? [] : trimmed.split('/');
  if (parts.length < 3) return info;
  const prefix = parts[0] as string;
  if (prefix !== 'api' && prefix !== 'apis') return info;
  parts = parts.slice(1);
  if (prefix === 'apis') {
    if (parts.length < 3) return info;
    info.apiGroup = parts[0] as string;
    parts = parts.slice(1);
  }
  info.isResourceRequest = true;
  info.apiVersion = parts[0] as string;
  parts = parts.slice(1);
  if (parts[0] === 'proxy' || parts[0] === 'watch') {
    if (parts.length < 2) return 'error';
    info.verb = parts[0];
    parts = parts.slice(1);
  } else {
    const byMethod: Record<string, string> = { POST: 'create', GET: 'get', HEAD: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };
    info.verb = byMethod[method] ?? '';
  }
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1] as string;
      if (parts.length > 2 && parts[2] !== 'status' && parts[2] !== 'finalize') parts = parts.slice(2);
    }
  }
  if (parts.length >= 3 && info.verb !== 'proxy') info.subresource = parts[2] as string;
  if (parts.length >= 2) info.name = parts[1] as string;
  if (parts.length >= 1) info.resource = parts[0] as string;
  if (info.name === '' && info.verb === 'get') {
    // Convert_Slice_string_To_bool on the first value: only "0" and (case-insensitive) "false" are false.
    const watch = new URLSearchParams(rawQueryOf(url)).getAll('watch');
    const first = watch[0];
    info.verb = first === undefined || first === '0' || first.toLowerCase() === 'false' ? 'list' : 'watch';
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';
  return info;
}

/** The bastion and the API server must agree on what an accepted request is. */
function expectAgreesWithApiserver(method: string, url: string, request: KubeRequest): void {
  const server = apiserverRequestInfo(method, url);
  expect(server).not.toBe('error');
  if (server === 'error') return;
  if (request.kind === 'nonResource') {
    expect(server.isResourceRequest, `${method} ${url}`).toBe(false);
    return;
  }
  expect(server.isResourceRequest, `${method} ${url}`).toBe(true);
  expect(
    {
      apiGroup: server.apiGroup,
      apiVersion: server.apiVersion,
      namespace: server.namespace,
      resource: server.resource,
      subresource: server.subresource,
      name: server.name,
    },
    `${method} ${url}`,
  ).toEqual({
    apiGroup: request.apiGroup,
    apiVersion: request.apiVersion,
    namespace: request.namespace,
    resource: request.resource,
    subresource: request.subresource,
    name: request.name,
  });
  if (request.stream) {
    // The API server says get for the WebSocket GET and create for the SPDY POST; the bastion says create for both.
    expect(request.verb).toBe('create');
    expect(server.verb).toBe(method === 'GET' ? 'get' : 'create');
  } else {
    expect(server.verb, `${method} ${url}`).toBe(request.verb);
  }
}

function expectRoundTrip(method: string, url: string, result: ParseResult): void {
  if (!result.ok) return;
  const { request } = result;
  expect(request.path).toBe(rawPathOf(url));
  expect(request.method).toBe(method);
  expect(formatKubePath(request)).toBe(request.path);
  // Re-parsing the canonical path with the same raw query gives the same request.
  const again = parseKubeRequest(method, request.path + rawQueryOf(url));
  expect(again.ok).toBe(true);
  if (again.ok) {
    expect(shapeOf(again.request)).toEqual(shapeOf(request));
    expect(again.request.path).toBe(request.path);
  }
  // ...and so does re-parsing it with the query as URLSearchParams re-serialises it.
  const serialised = request.query.toString();
  const third = parseKubeRequest(method, request.path + (serialised ? `?${serialised}` : ''));
  expect(third.ok).toBe(true);
  if (third.ok) expect(shapeOf(third.request)).toEqual(shapeOf(request));
}

describe('parseKubeRequest: corpus', () => {
  it('has at least 80 cases and uses every refusal reason except the internal safety net', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(80);
    const used = new Set(CORPUS.flatMap((c) => ('refuse' in c ? [c.refuse] : [])));
    const unused = PARSE_REFUSAL_REASONS.filter((r) => r !== 'non-canonical' && !used.has(r));
    expect(unused).toEqual([]);
    const keys = CORPUS.map((c) => `${c.method} ${c.url}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it.each(CORPUS.map((c) => [describeCase(c), c] as const))('%s', (_title, c) => {
    const result = parseKubeRequest(c.method, c.url);
    if ('refuse' in c) {
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.reason).toBe(c.refuse);
        expect(result.message.length).toBeGreaterThan(0);
      }
      return;
    }
    expect(result.ok, result.ok ? '' : `${result.reason}: ${result.message}`).toBe(true);
    if (!result.ok) return;
    expect(shapeOf(result.request)).toEqual(c.expect);
    expectRoundTrip(c.method, c.url, result);
    expectAgreesWithApiserver(c.method, c.url, result.request);
  });
});

describe('parseKubeRequest: exec as kubectl sends it', () => {
  const url = `/api/v1/namespaces/demo/pods/web/exec?${KUBECTL_EXEC_QUERY}`;

  it('keeps every repeated command argument, decoded, in order', () => {
    const result = parseKubeRequest('POST', url);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.request.query.getAll('command')).toEqual(KUBECTL_EXEC_ARGV);
    expect(result.request.query.get('container')).toBe('sidecar');
    expect(result.request.query.get('stdout')).toBe('true');
  });

  it('classifies the WebSocket GET and the SPDY POST as one operation', () => {
    const ws = parseKubeRequest('GET', url);
    const spdy = parseKubeRequest('POST', url);
    expect(ws.ok && spdy.ok).toBe(true);
    if (!ws.ok || !spdy.ok) return;
    expect(shapeOf(ws.request)).toEqual(shapeOf(spdy.request));
    expect(ws.request.kind === 'resource' && ws.request.stream).toBe('exec');
    expect(ws.request.kind === 'resource' && ws.request.verb).toBe('create');
  });

  it('accepts the @kubernetes/client-node encoding (%20, explicit false, own key order)', () => {
    const result = parseKubeRequest('GET', `/api/v1/namespaces/demo/pods/web/exec?${CLIENT_NODE_EXEC_QUERY}`);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.request.query.getAll('command')).toEqual(['echo', 'hi there']);
    expect(result.request.query.get('stdin')).toBe('false');
  });

  it('keeps a literal "?" that begins the first key, as Go does', () => {
    const result = parseKubeRequest('GET', '/api/v1/pods??watch=true');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect([...result.request.query.keys()]).toEqual(['?watch']);
    expect(result.request.kind === 'resource' && result.request.verb).toBe('list');
  });
});

describe('parseKubeRequest: limits and robustness', () => {
  it('accepts a path of exactly MAX_PATH_LENGTH and refuses one character more', () => {
    const base = '/api/v1/namespaces/demo/configmaps/';
    const fill = MAX_PATH_LENGTH - base.length;
    // Object names are capped well below the path limit, so a maximal path is refused as a name, not as length.
    const atLimit = parseKubeRequest('GET', base + 'a'.repeat(fill));
    expect(atLimit.ok ? 'ok' : atLimit.reason).toBe('invalid-name');
    const over = parseKubeRequest('GET', base + 'a'.repeat(fill + 1));
    expect(over.ok ? 'ok' : over.reason).toBe('path-too-long');
    const tail = `/api/v1/nodes/n/proxy/${'x/'.repeat(2030)}y`;
    expect(tail.length).toBeLessThanOrEqual(MAX_PATH_LENGTH);
    expect(parseKubeRequest('GET', tail).ok).toBe(true);
  });

  it('never throws on hostile inputs', () => {
    const inputs = [
      '/%', '/%%', '/%%%', '/?%', '/??', '/?&&&', '/?=', '/?==', '/?a=%', '/?%E2%82', '/?%C0%AF', '/?%ED%A0%80',
      '/\uD800', '/?\uDFFF', '/api/v1/namespaces', '/api/v1/namespaces/', '/apis/a.b', '/apis/a.b/v1/watch/namespaces',
      '/apis/a.b/v1/namespaces/x/y/z/proxy', '/api/v1/x/y/proxy/%', '/api/v1/watch/watch', '/api/v1/watch/proxy/x',
      '/' + '/'.repeat(10000), '/a'.repeat(3000), '/?' + '&'.repeat(70000),
    ];
    for (const input of inputs) {
      for (const method of ['GET', 'POST', 'DELETE']) {
        expect(() => parseKubeRequest(method, input)).not.toThrow();
        const result = parseKubeRequest(method, input);
        if (!result.ok) expect(PARSE_REFUSAL_REASONS).toContain(result.reason);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Property test: seeded random mutations of valid targets never throw, and either parse to a request
// whose canonical path round-trips (and that the API server would classify identically) or are
// refused with a known reason. The internal `non-canonical` safety net must never fire.
// ---------------------------------------------------------------------------------------------
const TOKENS = [
  '/', '//', '.', '..', '/./', '/../', '/.', '/..', '%2F', '%2f', '%2E', '%2e', '%5C', '%41', '%', '%2', '%zz', '%FF', ';', ';x=1',
  '\\', 'A', 'Z', ':', '@', '~', '_', '-', '+', ' ', '\t', '\u0000', '\u00e9', '#', '?', '&', '=', 'watch', 'proxy', 'namespaces',
  'status', 'finalize', 'exec', 'log', 'pods', 'v1', 'apps', 'x.io', 'watch=true', '&watch=1', '&watch=false', 'watch/', 'namespaces/',
  '/proxy/', 'command=a', '&tty=yes', '&container=c', '/exec', '/api', '/apis',
];
const METHODS = ['GET', 'GET', 'GET', 'HEAD', 'POST', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

function mutate(rand: () => number, url: string): string {
  const at = Math.floor(rand() * (url.length + 1));
  switch (Math.floor(rand() * 7)) {
    case 0:
    case 1:
      return url.slice(0, at) + pick(rand, TOKENS) + url.slice(at);
    case 2: {
      const len = 1 + Math.floor(rand() * 8);
      return url.slice(0, at) + url.slice(at + len);
    }
    case 3: {
      const ch = url.charAt(at);
      const swapped = ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase();
      return url.slice(0, at) + swapped + url.slice(at + 1);
    }
    case 4: {
      // duplicate a path segment
      const path = rawPathOf(url);
      const segs = path.split('/');
      const i = 1 + Math.floor(rand() * Math.max(1, segs.length - 1));
      segs.splice(i, 0, segs[i] ?? '');
      return segs.join('/') + rawQueryOf(url);
    }
    case 5:
      return url.slice(0, at);
    default: {
      // swap two path segments
      const segs = rawPathOf(url).split('/');
      const i = 1 + Math.floor(rand() * Math.max(1, segs.length - 1));
      const j = 1 + Math.floor(rand() * Math.max(1, segs.length - 1));
      const tmp = segs[i] ?? '';
      segs[i] = segs[j] ?? '';
      segs[j] = tmp;
      return segs.join('/') + rawQueryOf(url);
    }
  }
}

describe('parseKubeRequest: property (seeded mutations)', () => {
  const seeds = CORPUS.filter((c) => 'expect' in c && c.url.length < 400).map((c) => c.url);

  it.each([1, 2, 3, 4])('seed %i: 4000 mutants never throw; accepted ones round-trip and agree with the API server', (seed) => {
    const rand = mulberry32(0x6b756265 ^ (seed * 2654435761));
    let accepted = 0;
    let refused = 0;
    for (let n = 0; n < 4000; n++) {
      let url = pick(rand, seeds);
      const rounds = 1 + Math.floor(rand() * 3);
      for (let r = 0; r < rounds; r++) url = mutate(rand, url);
      const method = pick(rand, METHODS);
      let result: ParseResult;
      try {
        result = parseKubeRequest(method, url);
      } catch (err) {
        throw new Error(`threw on ${method} ${JSON.stringify(url)}: ${String(err)}`);
      }
      if (!result.ok) {
        refused++;
        expect(PARSE_REFUSAL_REASONS, `${method} ${JSON.stringify(url)}`).toContain(result.reason);
        expect(result.reason, `${method} ${JSON.stringify(url)}`).not.toBe('non-canonical');
        continue;
      }
      accepted++;
      const { request } = result;
      const path = request.path;
      expect(path.startsWith('/')).toBe(true);
      expect(path === '/' || !path.endsWith('/')).toBe(true);
      expect(path).not.toMatch(/\/\/|%|;|\\|[\s#?]/);
      expect(path.split('/').some((s) => s === '.' || s === '..')).toBe(false);
      if (request.kind === 'resource') {
        expect(path.slice(0, path.length - request.proxyPath.length)).not.toMatch(/[A-Z]/);
      } else {
        expect(path).not.toMatch(/[A-Z]/);
      }
      expectRoundTrip(method, url, result);
      expectAgreesWithApiserver(method, url, request);
    }
    // The mutation mix must exercise both outcomes.
    expect(accepted).toBeGreaterThan(200);
    expect(refused).toBeGreaterThan(1000);
  });
});

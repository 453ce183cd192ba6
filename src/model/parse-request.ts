// Canonicalising parser for the Kubernetes API request-target.
//
// The bastion classifies a request, then forwards it to a real kube-apiserver. The two must agree on
// what the request IS, or a policy that denies `create pods/exec` could be walked around by a path the
// bastion reads as something harmless and the API server reads as exec. So this parser:
//
//   1. accepts only the single canonical spelling of each request: no percent-encoding in the path at
//      all, no dot segments, no empty segments, no trailing slash, no `;` parameters, no upper case in
//      API segments, no characters outside a small allow-list, no fragment, origin-form only;
//   2. re-implements the API server's RequestInfoFactory rules (k8s.io/apiserver
//      pkg/endpoints/request/requestinfo.go) on what remains, and additionally refuses shapes that the
//      API server would classify but that no real client sends (POST on a named object, PUT on a
//      collection, a `watch` query on a named object, extra segments after a non-proxy subresource...);
//   3. validates the query so that the WHATWG URLSearchParams the bastion sees and Go's url.ParseQuery
//      the API server sees yield the same parameters (no `;`, no malformed escapes, valid UTF-8), and
//      refuses repeated singular parameters; reads booleans and port lists as the API server does and
//      refuses the spellings a client could mean differently (protocol/query.ts);
//   4. rebuilds the path from the parsed fields and refuses if it differs from the received one, so an
//      accepted request's `path` always round-trips.
//
// Pure function, never throws.
import type { NonResourceRequest, ParseFailure, ParseResult, ResourceRequest, ResourceVerb, StreamOperation } from './request.js';
import { queryBool, queryPorts } from '../protocol/query.js';
import { BOOLEAN_QUERY_PARAMS, REPEATABLE_QUERY_PARAMS, STREAM_OPERATIONS } from './vocabulary.js';

/** Longest path (without query) accepted. */
export const MAX_PATH_LENGTH = 4096;
/** Longest raw query accepted (exec commands travel here). */
export const MAX_QUERY_LENGTH = 65536;

/** Every `reason` this parser can return in a ParseFailure. Stable: audit rows and tests use them. */
export const PARSE_REFUSAL_REASONS = [
  'method-not-allowed', // HTTP method outside GET/HEAD/POST/PUT/PATCH/DELETE, or not valid for this shape
  'absolute-form', // request-target is `scheme://...`
  'not-origin-form', // request-target does not start with `/`
  'path-too-long', // path > MAX_PATH_LENGTH
  'query-too-long', // query > MAX_QUERY_LENGTH
  'fragment', // `#` anywhere in the target
  'control-character', // C0 control, DEL or space anywhere in the target
  'invalid-character', // any other byte outside the allowed set (non-ASCII, `"<>^`{|}`, ...)
  'backslash', // literal `\` in the path
  'encoded-slash', // %2F / %2f in the path
  'encoded-backslash', // %5C / %5c in the path
  'encoded-dot', // %2E / %2e in the path
  'percent-encoding', // any other (or malformed) percent-escape in the path
  'path-parameter', // `;` in the path
  'double-slash', // empty path segment
  'trailing-slash', // path ends in `/` (other than `/` itself)
  'dot-segment', // `.` or `..` segment
  'upper-case', // upper case in an API path segment
  'invalid-group', // /apis/GROUP where GROUP is not a DNS name with a dot nor a known dotless group
  'invalid-version', // version segment not vN[alphaN|betaN] (core: only v1)
  'invalid-resource', // resource segment not a lower-case DNS-1035 label
  'invalid-subresource', // subresource segment not a lower-case DNS-1035 label
  'invalid-namespace', // namespace not a DNS-1123 label
  'invalid-name', // object name outside [a-z0-9]([a-z0-9.:@-]*[a-z0-9])?, max 319
  'unknown-shape', // none of the known resource or non-resource path shapes
  'bad-query-encoding', // `;` in the query, malformed %-escape, or escapes that are not UTF-8
  'ambiguous-watch', // repeated `watch`, a value outside protocol/query.ts's booleans, or `watch` where it means nothing
  'duplicate-parameter', // a singular query parameter given more than once
  'bad-parameter', // a boolean parameter (stdin, tty, follow...) outside protocol/query.ts's booleans, or a bad `ports` list
  'non-canonical', // internal safety net: the rebuilt path differs from the received one
] as const;

export type ParseRefusalReason = (typeof PARSE_REFUSAL_REASONS)[number];

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

/** Named API groups without a dot that kube-apiserver serves. */
export const DOTLESS_GROUPS: ReadonlySet<string> = new Set(['apps', 'batch', 'policy', 'autoscaling', 'extensions']);

const STREAM_SUBRESOURCES: ReadonlySet<string> = new Set<StreamOperation>(STREAM_OPERATIONS);

const REPEATABLE_PARAMS: ReadonlySet<string> = new Set(REPEATABLE_QUERY_PARAMS);

const VERSION_RE = /^v[0-9]+(?:(?:alpha|beta)[0-9]+)?$/;
const DNS_LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/; // RFC 1123 label
const DNS1035_LABEL_RE = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/; // resource plurals, subresources
const NAME_RE = /^[a-z0-9](?:[a-z0-9.:@-]{0,317}[a-z0-9])?$/; // DNS-ish; `:` for rbac and proxy NAME:PORT
const NON_RESOURCE_SEGMENT_RE = /^[a-z0-9](?:[a-z0-9._-]{0,251}[a-z0-9])?$/;
const UPPER_RE = /[A-Z]/;
const HEX2_RE = /^[0-9A-Fa-f]{2}$/;
const ABSOLUTE_FORM_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

// RFC 3986 pchar minus `%` and `;` (handled separately), plus `/`.
const PATH_SAFE = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]$/;
// RFC 3986 query characters minus `;` and `%` (handled separately).
const QUERY_SAFE = /^[A-Za-z0-9\-._~!$&'()*+,=:@/?]$/;

function fail(reason: ParseRefusalReason, message: string, parameter?: string): ParseFailure {
  return parameter === undefined ? { ok: false, reason, message } : { ok: false, reason, message, parameter };
}

type Check = ParseFailure | null;

function isGroup(group: string): boolean {
  if (DOTLESS_GROUPS.has(group)) return true;
  if (group.length > 253 || !group.includes('.')) return false;
  return group.split('.').every((label) => DNS_LABEL_RE.test(label));
}

function checkSegment(
  value: string,
  what: string,
  re: RegExp,
  reason: ParseRefusalReason,
): Check {
  if (UPPER_RE.test(value)) return fail('upper-case', `${what} "${value}" contains upper case; API paths are lower case`);
  if (!re.test(value)) return fail(reason, `${what} "${value}" is not valid`);
  return null;
}

/** Character-level checks on the path. First offending character decides. */
function scanPath(path: string): Check {
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    const ch = path[i] as string;
    if (code <= 0x20 || code === 0x7f) return fail('control-character', `path contains a control character or space at offset ${i}`);
    if (code > 0x7e) return fail('invalid-character', `path contains a non-ASCII character at offset ${i}`);
    if (ch === '\\') return fail('backslash', 'path contains a backslash');
    if (ch === ';') return fail('path-parameter', 'path contains a ";" path parameter');
    if (ch === '%') {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX2_RE.test(hex)) return fail('percent-encoding', `path contains a malformed percent-escape at offset ${i}`);
      switch (hex.toUpperCase()) {
        case '2F':
          return fail('encoded-slash', 'path contains an encoded slash (%2F)');
        case '5C':
          return fail('encoded-backslash', 'path contains an encoded backslash (%5C)');
        case '2E':
          return fail('encoded-dot', 'path contains an encoded dot (%2E)');
        default:
          return fail('percent-encoding', `path contains a percent-escape (%${hex}); Kubernetes paths need none`);
      }
    }
    if (!PATH_SAFE.test(ch)) return fail('invalid-character', `path contains the character ${JSON.stringify(ch)}`);
  }
  return null;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes one application/x-www-form-urlencoded component the way Go's url.QueryUnescape does, or null. */
function decodeComponent(raw: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i] as string;
    if (ch === '%') {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX2_RE.test(hex)) return null;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (ch === '+') {
      bytes.push(0x20);
    } else {
      bytes.push(raw.charCodeAt(i));
    }
  }
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return null;
  }
}

function parseQuery(raw: string): { ok: true; query: URLSearchParams } | ParseFailure {
  for (let i = 0; i < raw.length; i++) {
    const code = raw.charCodeAt(i);
    const ch = raw[i] as string;
    if (code <= 0x20 || code === 0x7f) return fail('control-character', `query contains a control character or space at offset ${i}`);
    if (code > 0x7e) return fail('invalid-character', `query contains a non-ASCII character at offset ${i}`);
    if (ch === ';') return fail('bad-query-encoding', 'query contains ";" (Go drops such parameters, so the API server would see different parameters)');
    if (ch !== '%' && !QUERY_SAFE.test(ch)) return fail('invalid-character', `query contains the character ${JSON.stringify(ch)}`);
  }
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (decodeComponent(key) === null || decodeComponent(value) === null) {
      return fail('bad-query-encoding', `query parameter ${JSON.stringify(pair.slice(0, 64))} has a malformed percent-escape or is not UTF-8`);
    }
  }
  // The leading `?` keeps URLSearchParams from stripping a `?` that is part of the first key, as Go would keep it.
  return { ok: true, query: new URLSearchParams(`?${raw}`) };
}

/**
 * Checks on repeated parameters and on the parameters that change what a request means. A proxied
 * request's query belongs to the pod or service behind it, so it is not read.
 */
function checkQuery(query: URLSearchParams, opts: { watchAllowed: boolean; proxy: boolean; portforward: boolean }): Check {
  if (opts.proxy) return null;
  const watch = query.getAll('watch');
  if (watch.length > 1) return fail('ambiguous-watch', 'the "watch" parameter is given more than once', 'watch');
  if (watch.length > 0 && !opts.watchAllowed) return fail('ambiguous-watch', 'the "watch" parameter is only meaningful on a GET of a collection', 'watch');
  for (const key of new Set(query.keys())) {
    if (key === 'watch' || REPEATABLE_PARAMS.has(key)) continue;
    if (query.getAll(key).length > 1) return fail('duplicate-parameter', `the query parameter ${JSON.stringify(key)} is given more than once`, key);
  }
  for (const key of BOOLEAN_QUERY_PARAMS) {
    if (!query.has(key)) continue;
    const value = queryBool(query, key);
    if (!value.ok) return fail(key === 'watch' ? 'ambiguous-watch' : 'bad-parameter', value.message, key);
  }
  if (opts.portforward) {
    const ports = queryPorts(query);
    if (!ports.ok) return fail('bad-parameter', ports.message, ports.parameter);
  }
  return null;
}

/** A watch as the API server decides it for a GET of a collection; a refused spelling is refused by checkQuery. */
function isWatchQuery(query: URLSearchParams): boolean {
  const watch = queryBool(query, 'watch');
  return watch.ok && watch.value;
}

/**
 * The canonical path of a parsed request. For a resource request, the legacy `/watch/` prefix form is
 * used when the verb is `watch` and the query carries no `watch` parameter (that is how it was received).
 */
export function formatKubePath(request: ResourceRequest | NonResourceRequest): string {
  if (request.kind === 'nonResource') return request.path;
  const parts: string[] = request.apiGroup ? ['apis', request.apiGroup, request.apiVersion] : ['api', request.apiVersion];
  if (request.verb === 'watch' && !request.query.has('watch')) parts.push('watch');
  if (request.resource === 'namespaces' && request.name !== '' && request.namespace === request.name) {
    parts.push('namespaces', request.name);
  } else {
    if (request.namespace) parts.push('namespaces', request.namespace);
    parts.push(request.resource);
    if (request.name) parts.push(request.name);
  }
  if (request.subresource) parts.push(request.subresource);
  return `/${parts.join('/')}${request.proxyPath}`;
}

function nonResource(method: string, path: string, query: URLSearchParams): ParseResult {
  const check = checkQuery(query, { watchAllowed: false, proxy: false, portforward: false });
  if (check) return check;
  const verb = method === 'GET' || method === 'HEAD' ? 'get' : method.toLowerCase();
  return { ok: true, request: { kind: 'nonResource', method, path, verb, query } };
}

function checkNonResourceTail(segs: string[], from: number): Check {
  for (let i = from; i < segs.length; i++) {
    const seg = segs[i] as string;
    const check = checkSegment(seg, 'path segment', NON_RESOURCE_SEGMENT_RE, 'unknown-shape');
    if (check) return check;
  }
  return null;
}

/** Non-resource endpoints other than API discovery. */
function parseOtherNonResource(method: string, path: string, segs: string[], query: URLSearchParams): ParseResult {
  const upper = segs.find((s) => UPPER_RE.test(s));
  if (upper !== undefined) return fail('upper-case', `path segment "${upper}" contains upper case; API paths are lower case`);
  const unknown = fail('unknown-shape', `"${path}" is not a Kubernetes API path the bastion knows`);
  const [head, second] = segs;
  let known: boolean;
  switch (head) {
    case 'version':
      known = segs.length === 1;
      break;
    case 'openapi':
      known = (second === 'v2' && segs.length === 2) || (second === 'v3' && checkNonResourceTail(segs, 2) === null);
      break;
    case 'healthz':
    case 'livez':
    case 'readyz':
      known = checkNonResourceTail(segs, 1) === null;
      break;
    case 'metrics':
      known = segs.length === 1 || (segs.length === 2 && second === 'slis');
      break;
    default:
      known = false;
  }
  return known ? nonResource(method, path, query) : unknown;
}

interface Shape {
  apiGroup: string;
  apiVersion: string;
  watchPrefix: boolean;
  namespace: string;
  resource: string;
  name: string;
  subresource: string;
  proxyPath: string;
}

/** Resource part of the path: everything after /api/v1 or /apis/GROUP/VERSION. */
function parseResourceShape(path: string, apiGroup: string, apiVersion: string, rest: string[]): Shape | ParseFailure {
  const unknown = (why: string): ParseFailure => fail('unknown-shape', `"${path}": ${why}`);
  let i = 0;
  let watchPrefix = false;
  const first = rest[0] as string;
  if (first === 'watch') {
    watchPrefix = true;
    i = 1;
    if (rest.length === 1) return unknown('the watch prefix needs a resource');
  } else if (first === 'proxy') {
    return unknown('the legacy /proxy/ verb prefix is not supported; use the proxy subresource');
  }

  let namespace = '';
  let parts: string[];
  if (rest[i] === 'namespaces' && rest.length > i + 1) {
    const ns = rest[i + 1] as string;
    const check = checkSegment(ns, 'namespace', DNS_LABEL_RE, 'invalid-namespace');
    if (check) return check;
    namespace = ns;
    const next = rest[i + 2];
    if (next === undefined) {
      // /namespaces/NAME: the namespace object itself (resource namespaces, name NAME, namespace NAME).
      return { apiGroup, apiVersion, watchPrefix, namespace, resource: 'namespaces', name: ns, subresource: '', proxyPath: '' };
    }
    if (next === 'status' || next === 'finalize') {
      if (rest.length > i + 3) return unknown(`the namespace subresource "${next}" takes no further segments`);
      if (watchPrefix) return unknown('a watch cannot address a subresource');
      return { apiGroup, apiVersion, watchPrefix, namespace, resource: 'namespaces', name: ns, subresource: next, proxyPath: '' };
    }
    parts = rest.slice(i + 2);
  } else {
    parts = rest.slice(i);
  }

  const resource = parts[0] as string;
  let check = checkSegment(resource, 'resource', DNS1035_LABEL_RE, 'invalid-resource');
  if (check) return check;
  if (resource === 'watch' || resource === 'proxy') return unknown(`"${resource}" is a verb prefix, not a resource`);
  if (resource === 'namespaces' && namespace !== '') return unknown('namespaces are not namespaced');

  let name = '';
  let subresource = '';
  let proxyPath = '';
  if (parts.length >= 2) {
    name = parts[1] as string;
    check = checkSegment(name, 'name', NAME_RE, 'invalid-name');
    if (check) return check;
  }
  if (parts.length >= 3) {
    subresource = parts[2] as string;
    check = checkSegment(subresource, 'subresource', DNS1035_LABEL_RE, 'invalid-subresource');
    if (check) return check;
    if (watchPrefix) return unknown('a watch cannot address a subresource');
  }
  if (parts.length >= 4) {
    if (subresource !== 'proxy') return unknown(`the subresource "${subresource}" takes no further segments`);
    proxyPath = `/${parts.slice(3).join('/')}`;
  }
  return { apiGroup, apiVersion, watchPrefix, namespace, resource, name, subresource, proxyPath };
}

function resourceVerb(method: string, shape: Shape, query: URLSearchParams): ResourceVerb | ParseFailure {
  const wrongMethod = (why: string): ParseFailure => fail('method-not-allowed', `${method} ${why}`);
  if (shape.watchPrefix) {
    if (method !== 'GET' && method !== 'HEAD') return wrongMethod('is not allowed on a /watch/ path');
    return 'watch';
  }
  const hasName = shape.name !== '';
  switch (method) {
    case 'GET':
    case 'HEAD':
      if (hasName) return 'get';
      return isWatchQuery(query) ? 'watch' : 'list';
    case 'POST':
      if (hasName && shape.subresource === '') return wrongMethod('on a named object is not a Kubernetes operation (create posts to the collection)');
      return 'create';
    case 'PUT':
      if (!hasName) return wrongMethod('on a collection is not a Kubernetes operation');
      return 'update';
    case 'PATCH':
      if (!hasName) return wrongMethod('on a collection is not a Kubernetes operation');
      return 'patch';
    case 'DELETE':
      return hasName ? 'delete' : 'deletecollection';
    default:
      return wrongMethod('is not allowed');
  }
}

function parseResource(method: string, path: string, apiGroup: string, apiVersion: string, rest: string[], query: URLSearchParams): ParseResult {
  const shape = parseResourceShape(path, apiGroup, apiVersion, rest);
  if ('ok' in shape) return shape;

  let stream: StreamOperation | undefined;
  let verb: ResourceVerb;
  if (apiGroup === '' && shape.resource === 'pods' && STREAM_SUBRESOURCES.has(shape.subresource)) {
    // exec/attach/portforward: one operation whether it arrives as a WebSocket GET or an SPDY POST.
    if (method !== 'GET' && method !== 'POST') {
      return fail('method-not-allowed', `${method} is not allowed on pods/${shape.subresource} (only GET for WebSocket, POST for SPDY)`);
    }
    if (shape.namespace === '') return fail('unknown-shape', `"${path}": pods/${shape.subresource} needs a namespace`);
    stream = shape.subresource as StreamOperation;
    verb = 'create';
  } else {
    const v = resourceVerb(method, shape, query);
    if (typeof v !== 'string') return v;
    verb = v;
  }

  const proxy = shape.subresource === 'proxy';
  const check = checkQuery(query, {
    watchAllowed: !shape.watchPrefix && shape.name === '' && (method === 'GET' || method === 'HEAD'),
    proxy,
    portforward: stream === 'portforward',
  });
  if (check) return check;

  const request: ResourceRequest = {
    kind: 'resource',
    method,
    path,
    verb,
    apiGroup: shape.apiGroup,
    apiVersion: shape.apiVersion,
    resource: shape.resource,
    subresource: shape.subresource,
    namespace: shape.namespace,
    name: shape.name,
    proxyPath: shape.proxyPath,
    query,
  };
  if (stream) request.stream = stream;
  const canonical = formatKubePath(request);
  if (canonical !== path) return fail('non-canonical', `"${path}" is not in canonical form ("${canonical}")`);
  return { ok: true, request };
}

/**
 * Parses and canonicalises one request from its method and raw request-target (`req.url`).
 * Anything non-canonical or ambiguous is refused with a stable reason code (PARSE_REFUSAL_REASONS).
 */
export function parseKubeRequest(method: string, rawUrl: string): ParseResult {
  if (!METHODS.has(method)) return fail('method-not-allowed', `the HTTP method ${JSON.stringify(method.slice(0, 32))} is not allowed`);
  if (!rawUrl.startsWith('/')) {
    if (ABSOLUTE_FORM_RE.test(rawUrl)) return fail('absolute-form', 'absolute-form request-targets are not accepted; send the path only');
    return fail('not-origin-form', 'the request-target must start with "/"');
  }
  if (rawUrl.length > MAX_PATH_LENGTH + 1 + MAX_QUERY_LENGTH) return fail('query-too-long', 'the request-target is too long');
  for (let i = 0; i < rawUrl.length; i++) {
    const code = rawUrl.charCodeAt(i);
    if (code <= 0x20 || code === 0x7f) return fail('control-character', `the request-target contains a control character or space at offset ${i}`);
  }
  if (rawUrl.includes('#')) return fail('fragment', 'the request-target contains a "#" fragment');

  const q = rawUrl.indexOf('?');
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
  if (path.length > MAX_PATH_LENGTH) return fail('path-too-long', `the path is longer than ${MAX_PATH_LENGTH} characters`);
  if (rawQuery.length > MAX_QUERY_LENGTH) return fail('query-too-long', `the query is longer than ${MAX_QUERY_LENGTH} characters`);

  const scan = scanPath(path);
  if (scan) return scan;
  const parsedQuery = parseQuery(rawQuery);
  if (!parsedQuery.ok) return parsedQuery;
  const query = parsedQuery.query;

  if (path === '/') return nonResource(method, path, query);
  const segs = path.slice(1).split('/');
  for (let i = 0; i < segs.length; i++) {
    if (segs[i] === '') {
      if (i === segs.length - 1) return fail('trailing-slash', `"${path}" ends in a slash`);
      return fail('double-slash', `"${path}" contains an empty segment ("//")`);
    }
  }
  if (segs.some((s) => s === '.' || s === '..')) return fail('dot-segment', `"${path}" contains a "." or ".." segment`);

  const head = segs[0] as string;
  if (head === 'api') {
    if (segs.length === 1) return nonResource(method, path, query);
    const version = segs[1] as string;
    if (UPPER_RE.test(version)) return fail('upper-case', `version "${version}" contains upper case`);
    if (version !== 'v1') return fail('invalid-version', `the core API has only version v1, not "${version}"`);
    if (segs.length === 2) return nonResource(method, path, query);
    return parseResource(method, path, '', version, segs.slice(2), query);
  }
  if (head === 'apis') {
    if (segs.length === 1) return nonResource(method, path, query);
    const group = segs[1] as string;
    if (UPPER_RE.test(group)) return fail('upper-case', `API group "${group}" contains upper case`);
    if (!isGroup(group)) {
      return fail('invalid-group', `"${group}" is not an API group (a DNS name with a dot, or one of ${[...DOTLESS_GROUPS].join(', ')})`);
    }
    if (segs.length === 2) return nonResource(method, path, query);
    const version = segs[2] as string;
    const check = checkSegment(version, 'version', VERSION_RE, 'invalid-version');
    if (check) return check;
    if (segs.length === 3) return nonResource(method, path, query);
    return parseResource(method, path, group, version, segs.slice(3), query);
  }
  return parseOtherNonResource(method, path, segs, query);
}

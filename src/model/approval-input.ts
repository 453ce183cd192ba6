// Input checks for approvals. Every refusal is a BAD_REQUEST whose details.field names the field
// (`scope.pod`, `scope.commands[1][0]`, `ttlSeconds`, ...), so the control API and the CLI can
// point at it. Scopes arrive from JSON: nothing is assumed about their shape.
import type { StreamOperation } from './request.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import { canonicalScope } from './scope.js';
import { RESOURCE_VERBS, STREAM_OPERATIONS as STREAM_VERBS, type ResourceVerb } from './vocabulary.js';

export { RESOURCE_VERBS };
import type { ApprovalScope, RestScope, StreamScope } from './approval.js';


/** Longest validity an approver may give (grant, approve). */
export const MAX_TTL_SECONDS = 86_400;
export const MAX_REASON_LENGTH = 2000;
export const MAX_COMMANDS = 64;
export const MAX_ARGV_LENGTH = 256;
export const MAX_ARG_LENGTH = 4096;

/** RFC 1123 label: namespaces, containers. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: pod names. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
/** RFC 1035 label: resource plurals and subresources. */
const DNS1035_LABEL = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Object names as the request parser accepts them (`:` for RBAC names, `@` for some CRDs). */
const OBJECT_NAME = /^[a-z0-9](?:[a-z0-9.:@-]{0,317}[a-z0-9])?$/;

export function badRequest(field: string, message: string): BastionError {
  return new BastionError(ErrorCode.BAD_REQUEST, message, { field });
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (v === undefined) return 'missing';
  try {
    const text = JSON.stringify(v);
    return text === undefined ? typeof v : text.length > 80 ? `${text.slice(0, 80)}…` : text;
  } catch {
    return typeof v;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(field: string, v: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      throw badRequest(`${field}.${key}`, `${field}.${key} is not a field of a ${String(v['kind'])} scope (fields: ${allowed.join(', ')})`);
    }
  }
}

function dnsName(field: string, v: unknown, re: RegExp, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw badRequest(field, `${field} is required (${what})`);
  if (!re.test(v)) throw badRequest(field, `${field} ${show(v)} is invalid: it must be ${what}`);
  return v;
}

const LABEL_TEXT = "a DNS label: lower-case letters, digits and '-', at most 63 characters";
const SUBDOMAIN_TEXT = "a DNS subdomain: lower-case letters, digits, '-' and '.', at most 253 characters";

function validateStreamScope(v: Record<string, unknown>): StreamScope {
  checkKeys('scope', v, ['kind', 'namespace', 'pod', 'container', 'verbs', 'commands', 'maxSessions']);
  const namespace = dnsName('scope.namespace', v['namespace'], DNS_LABEL, LABEL_TEXT);
  const pod = dnsName('scope.pod', v['pod'], DNS_SUBDOMAIN, SUBDOMAIN_TEXT);
  const container = dnsName('scope.container', v['container'], DNS_LABEL, LABEL_TEXT);

  const verbs = v['verbs'];
  if (!Array.isArray(verbs) || verbs.length === 0) {
    throw badRequest('scope.verbs', `scope.verbs must be a non-empty list of ${STREAM_VERBS.join(', ')}`);
  }
  verbs.forEach((verb: unknown, i) => {
    if (typeof verb !== 'string' || !(STREAM_VERBS as readonly string[]).includes(verb)) {
      throw badRequest(`scope.verbs[${i}]`, `scope.verbs[${i}] ${show(verb)} is not one of ${STREAM_VERBS.join(', ')}`);
    }
  });
  const scope: StreamScope = { kind: 'stream', namespace, pod, container, verbs: verbs as StreamOperation[] };

  const commands = v['commands'];
  if (commands !== undefined) {
    if (!Array.isArray(commands) || commands.length === 0) {
      throw badRequest('scope.commands', 'scope.commands must be a non-empty list of argv lists (leave it out to allow any command)');
    }
    if (commands.length > MAX_COMMANDS) throw badRequest('scope.commands', `scope.commands has more than ${MAX_COMMANDS} entries`);
    if (!scope.verbs.includes('exec')) {
      throw badRequest('scope.commands', 'scope.commands is an allow-list of exec commands, but scope.verbs does not include exec');
    }
    commands.forEach((argv: unknown, i) => {
      const f = `scope.commands[${i}]`;
      if (!Array.isArray(argv) || argv.length === 0) throw badRequest(f, `${f} must be a non-empty argv list, e.g. ["ls", "-l"]`);
      if (argv.length > MAX_ARGV_LENGTH) throw badRequest(f, `${f} has more than ${MAX_ARGV_LENGTH} arguments`);
      argv.forEach((arg: unknown, j) => {
        if (typeof arg !== 'string') throw badRequest(`${f}[${j}]`, `${f}[${j}] must be a string`);
        if (arg.length > MAX_ARG_LENGTH) throw badRequest(`${f}[${j}]`, `${f}[${j}] is longer than ${MAX_ARG_LENGTH} characters`);
      });
      if (typeof argv[0] === 'string' && argv[0].length === 0) throw badRequest(`${f}[0]`, `${f}[0] (the program) must not be empty`);
    });
    scope.commands = commands as string[][];
  }

  const maxSessions = v['maxSessions'];
  if (maxSessions !== undefined) {
    if (typeof maxSessions !== 'number' || !Number.isSafeInteger(maxSessions) || maxSessions < 1) {
      throw badRequest('scope.maxSessions', `scope.maxSessions ${show(maxSessions)} must be a positive integer (leave it out for no limit)`);
    }
    scope.maxSessions = maxSessions;
  }
  return scope;
}

/** `pods`, `deployments.apps`, `pods/ephemeralcontainers`, `widgets.example.com/status`. */
export function isScopedResource(resource: string): boolean {
  const slash = resource.split('/');
  if (slash.length > 2) return false;
  const [base, sub] = slash as [string, string | undefined];
  if (sub !== undefined && !DNS1035_LABEL.test(sub)) return false;
  const dot = base.indexOf('.');
  const plural = dot < 0 ? base : base.slice(0, dot);
  const group = dot < 0 ? undefined : base.slice(dot + 1);
  if (!DNS1035_LABEL.test(plural)) return false;
  return group === undefined || DNS_SUBDOMAIN.test(group);
}

function validateRestScope(v: Record<string, unknown>): RestScope {
  checkKeys('scope', v, ['kind', 'verb', 'resource', 'namespace', 'name']);
  const verb = v['verb'];
  if (typeof verb !== 'string' || !(RESOURCE_VERBS as readonly string[]).includes(verb)) {
    throw badRequest('scope.verb', `scope.verb ${show(verb)} is not one of ${RESOURCE_VERBS.join(', ')}`);
  }
  const resource = v['resource'];
  if (typeof resource !== 'string' || resource.length === 0) {
    throw badRequest('scope.resource', 'scope.resource is required, e.g. "pods", "deployments.apps" or "pods/ephemeralcontainers"');
  }
  if (!isScopedResource(resource)) {
    throw badRequest(
      'scope.resource',
      `scope.resource ${show(resource)} is invalid: use PLURAL[.GROUP][/SUBRESOURCE] in lower case, e.g. "pods", "deployments.apps" or "pods/ephemeralcontainers"`,
    );
  }
  const namespace = v['namespace'] ?? '';
  if (typeof namespace !== 'string' || (namespace !== '' && !DNS_LABEL.test(namespace))) {
    throw badRequest('scope.namespace', `scope.namespace ${show(namespace)} is invalid: it must be ${LABEL_TEXT} ('' for cluster-scoped resources)`);
  }
  const name = v['name'] ?? '';
  if (typeof name !== 'string' || (name !== '' && !OBJECT_NAME.test(name))) {
    throw badRequest('scope.name', `scope.name ${show(name)} is invalid: it must be a Kubernetes object name ('' for collections)`);
  }
  return { kind: 'rest', verb: verb as ResourceVerb, resource, namespace, name };
}

/** A checked, canonical scope (see canonicalScope). */
export function validateScope(v: unknown): ApprovalScope {
  if (!isRecord(v)) throw badRequest('scope', 'scope is required: an object with kind "stream" or "rest"');
  const kind = v['kind'];
  if (kind === 'stream') return canonicalScope(validateStreamScope(v));
  if (kind === 'rest') return canonicalScope(validateRestScope(v));
  throw badRequest('scope.kind', `scope.kind ${show(kind)} must be "stream" or "rest"`);
}

export function validateTtl(v: unknown, field = 'ttlSeconds', max = MAX_TTL_SECONDS): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) {
    throw badRequest(field, `${field} ${show(v)} must be a whole number of seconds from 1 to ${max}`);
  }
  return v;
}

/** A required reason, trimmed. */
export function validateReason(v: unknown, field = 'reason'): string {
  if (typeof v !== 'string' || v.trim().length === 0) throw badRequest(field, `${field} is required: say why`);
  return checkReasonLength(v.trim(), field);
}

/** An optional reason: absent, null or blank gives undefined. */
export function optionalReason(v: unknown, field = 'reason'): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(field, `${field} must be a string`);
  const t = v.trim();
  return t.length === 0 ? undefined : checkReasonLength(t, field);
}

function checkReasonLength(v: string, field: string): string {
  if (v.length > MAX_REASON_LENGTH) throw badRequest(field, `${field} is longer than ${MAX_REASON_LENGTH} characters`);
  return v;
}

/** What a held request asked for (shown to approvers). */
export function validateRequest(v: unknown): { method: string; path: string; command?: string[] } {
  if (!isRecord(v)) throw badRequest('request', 'request must be an object with method and path');
  const { method, path, command } = v;
  if (typeof method !== 'string' || method.length === 0) throw badRequest('request.method', 'request.method is required');
  if (typeof path !== 'string' || path.length === 0) throw badRequest('request.path', 'request.path is required');
  if (command !== undefined && (!Array.isArray(command) || !command.every((a) => typeof a === 'string'))) {
    throw badRequest('request.command', 'request.command must be a list of strings');
  }
  return command === undefined ? { method, path } : { method, path, command: [...(command as string[])] };
}

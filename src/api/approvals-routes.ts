// The approvals part of the control API (/v1/approvals): approvers and admins grant, approve, deny
// and revoke; reviewers (and everyone with a user token) read. The life cycle, its rules (nobody
// approves what they requested, agents never decide) and the audit rows live in the
// ApprovalService; this module turns JSON bodies into its calls and its BastionErrors into HTTP.
//
// POST /v1/approvals takes a flat body with one of two scope shapes:
//   stream: {agent, namespace, pod, container, verbs, ttlSeconds, reason, commands?, maxSessions?}
//   REST:   {agent, verb, resource, namespace?, name?, ttlSeconds, reason}
// told apart by their fields (`pod`/`container`/`verbs`/`commands`/`maxSessions` against
// `verb`/`resource`/`name`); a body with fields of both is refused, naming the first REST field.
import type { IncomingMessage } from 'node:http';
import { isBastionError } from '../errors/index.js';
import { APPROVAL_STATES, type Actor, type ApprovalScope, type ApprovalService, type ApprovalState, type RestScope, type StreamScope } from '../model/approval.js';
import type { ResourceVerb, StreamOperation } from '../model/request.js';
import type { User } from '../store/types.js';
import { DECIDERS, READERS, type Authenticate } from './auth.js';
import { ApiProblem, readJson, rejectUnknownFields, requireString, sendJson } from './http.js';
import type { Router } from './router.js';

export interface ApprovalRoutesDeps {
  approvals: ApprovalService;
  authenticate: Authenticate;
}

/** Fields only a stream scope has, and fields only a REST scope has (`namespace` is shared). */
export const STREAM_SCOPE_FIELDS = ['pod', 'container', 'verbs', 'commands', 'maxSessions'] as const;
export const REST_SCOPE_FIELDS = ['verb', 'resource', 'name'] as const;

const COMMON_GRANT_FIELDS = ['agent', 'ttlSeconds', 'reason'] as const;
const GRANT_FIELDS = [...COMMON_GRANT_FIELDS, 'namespace', ...STREAM_SCOPE_FIELDS, ...REST_SCOPE_FIELDS] as const;
const LIST_QUERY = ['state', 'agent'] as const;

export function registerApprovalRoutes(router: Router, deps: ApprovalRoutesDeps): void {
  const { approvals, authenticate } = deps;
  router
    .add('GET', '/v1/approvals', async ({ req, res, query }) => {
      await authenticate(req, READERS);
      for (const key of query.keys()) {
        if (!(LIST_QUERY as readonly string[]).includes(key)) {
          throw new ApiProblem(400, 'INVALID_QUERY', `unknown query parameter "${key}" (allowed: ${LIST_QUERY.join(', ')})`, key);
        }
      }
      const state = query.get('state');
      if (state !== null && !(APPROVAL_STATES as readonly string[]).includes(state)) {
        throw new ApiProblem(400, 'INVALID_QUERY', `"state" must be one of ${APPROVAL_STATES.join(', ')}`, 'state');
      }
      const agent = query.get('agent');
      if (agent !== null && agent.trim() === '') throw new ApiProblem(400, 'INVALID_QUERY', '"agent" must not be empty', 'agent');
      const items = await service(() =>
        approvals.list({ ...(state !== null ? { state: state as ApprovalState } : {}), ...(agent !== null ? { agent } : {}) }),
      );
      sendJson(res, 200, { items });
    })
    .add('POST', '/v1/approvals', async ({ req, res }) => {
      const user = await authenticate(req, DECIDERS);
      const body = await readJson(req);
      const input = parseGrant(body);
      const approval = await service(() => approvals.grant(input, actorOf(user)), 'grant');
      sendJson(res, 201, approval);
    })
    .add('GET', '/v1/approvals/:id', async ({ req, res, params }) => {
      await authenticate(req, READERS);
      const approval = await service(() => approvals.get(params.id!));
      if (!approval) throw notFound(params.id!);
      sendJson(res, 200, approval);
    })
    .add('POST', '/v1/approvals/:id/approve', async ({ req, res, params }) => {
      const user = await authenticate(req, DECIDERS);
      const body = await readOptionalJson(req);
      rejectUnknownFields(body, ['ttlSeconds', 'reason']);
      const ttlSeconds = optionalTtl(body);
      const reason = optionalReason(body);
      const opts = { ...(ttlSeconds !== undefined ? { ttlSeconds } : {}), ...(reason !== undefined ? { reason } : {}) };
      sendJson(res, 200, await service(() => approvals.approve(params.id!, actorOf(user), opts)));
    })
    .add('POST', '/v1/approvals/:id/deny', async ({ req, res, params }) => {
      const user = await authenticate(req, DECIDERS);
      const body = await readOptionalJson(req);
      rejectUnknownFields(body, ['reason']);
      const reason = requireString(body, 'reason');
      sendJson(res, 200, await service(() => approvals.deny(params.id!, actorOf(user), reason)));
    })
    .add('POST', '/v1/approvals/:id/revoke', async ({ req, res, params }) => {
      const user = await authenticate(req, DECIDERS);
      const body = await readOptionalJson(req);
      rejectUnknownFields(body, ['reason']);
      const reason = optionalReason(body);
      sendJson(res, 200, await service(() => approvals.revoke(params.id!, actorOf(user), reason)));
    });
}

/** The actor the service sees for an authenticated control-API user. */
export function actorOf(user: User): Actor {
  return { kind: 'user', name: user.name, role: user.role };
}

function notFound(id: string): ApiProblem {
  return new ApiProblem(404, 'NOT_FOUND', `approval ${JSON.stringify(id)} not found`);
}

/**
 * Runs a service call, turning its BastionErrors into API problems: NOT_FOUND 404, FORBIDDEN 403,
 * BAD_REQUEST 400 naming the field (details.field, with the service's `scope.` prefix dropped on a
 * grant, whose body is flat). An invalid transition (field `state`) is INVALID_STATE.
 */
async function service<T>(call: () => Promise<T>, operation?: 'grant'): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!isBastionError(err)) throw err;
    const raw = err.details?.['field'];
    let field = typeof raw === 'string' && raw !== '' ? raw : undefined;
    let message = err.message;
    if (operation === 'grant' && field?.startsWith('scope.')) {
      // The grant body is flat: `namespace`, not `scope.namespace` (quoted values are left alone).
      field = field.slice('scope.'.length);
      message = message.replace(/(^|\s)scope\.(?=[a-zA-Z])/g, '$1');
    }
    switch (err.code) {
      case 'NOT_FOUND':
        throw new ApiProblem(404, 'NOT_FOUND', err.message);
      case 'FORBIDDEN':
        throw new ApiProblem(403, 'FORBIDDEN', err.message);
      case 'BAD_REQUEST':
        throw new ApiProblem(400, field === 'state' ? 'INVALID_STATE' : 'INVALID_FIELD', message, field);
      default:
        // Anything else is the bastion's fault: logged and answered 500 by the endpoint.
        if (err.httpStatus === 500) throw new Error(`approval service: ${err.message}`, { cause: err });
        throw new ApiProblem(err.httpStatus, err.code, err.message);
    }
  }
}

/** A JSON body that may be left out entirely (no Content-Length, or zero). */
async function readOptionalJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const length = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if ((length === undefined && !chunked) || length === '0') {
    req.resume();
    return {};
  }
  return readJson(req);
}

function invalid(field: string, message: string): ApiProblem {
  return new ApiProblem(400, 'INVALID_FIELD', message, field);
}

function isWholeNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

function requireTtl(body: Record<string, unknown>): number {
  const v = body['ttlSeconds'];
  if (v === undefined) throw invalid('ttlSeconds', '"ttlSeconds" is required: how long the approval is valid, in seconds');
  if (!isWholeNumber(v) || v < 1) throw invalid('ttlSeconds', '"ttlSeconds" must be a whole number of seconds, at least 1');
  return v;
}

function optionalTtl(body: Record<string, unknown>): number | undefined {
  return body['ttlSeconds'] === undefined || body['ttlSeconds'] === null ? undefined : requireTtl(body);
}

function optionalReason(body: Record<string, unknown>): string | undefined {
  const v = body['reason'];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw invalid('reason', '"reason" must be a string');
  return v;
}

function optionalString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw invalid(field, `"${field}" must be a string`);
  return v;
}

function stringList(v: unknown, field: string, what: string): string[] {
  if (!Array.isArray(v) || v.length === 0) throw invalid(field, `"${field}" must be a non-empty array of ${what}`);
  v.forEach((item: unknown, i) => {
    if (typeof item !== 'string') throw invalid(`${field}[${i}]`, `"${field}[${i}]" must be a string`);
  });
  return v as string[];
}

/** Which scope shape a grant body has: by its fields, refusing a mixture. */
function grantKind(body: Record<string, unknown>): 'stream' | 'rest' {
  const has = (f: string): boolean => Object.prototype.hasOwnProperty.call(body, f);
  const stream = STREAM_SCOPE_FIELDS.filter(has);
  const rest = REST_SCOPE_FIELDS.filter(has);
  if (stream.length > 0 && rest.length > 0) {
    throw invalid(
      rest[0]!,
      `"${rest[0]}" is a REST scope field but the body also has stream scope field "${stream[0]}": ` +
        'give either a stream scope (namespace, pod, container, verbs[, commands, maxSessions]) or a REST scope (verb, resource[, namespace, name])',
    );
  }
  if (rest.length > 0) return 'rest';
  if (stream.length > 0) return 'stream';
  throw invalid(
    'verbs',
    'no scope: give either a stream scope (namespace, pod, container, verbs[, commands, maxSessions]) or a REST scope (verb, resource[, namespace, name])',
  );
}

/** A grant body into the service's input; type errors name the field (the service checks values). */
export function parseGrant(body: Record<string, unknown>): { agent: string; scope: ApprovalScope; ttlSeconds: number; reason: string } {
  rejectUnknownFields(body, GRANT_FIELDS);
  const kind = grantKind(body);
  const agent = requireString(body, 'agent');
  let scope: ApprovalScope;
  if (kind === 'stream') {
    const stream: StreamScope = {
      kind: 'stream',
      namespace: requireString(body, 'namespace'),
      pod: requireString(body, 'pod'),
      container: requireString(body, 'container'),
      verbs: stringList(body['verbs'], 'verbs', 'stream verbs (exec, attach, portforward)') as StreamOperation[],
    };
    const commands = body['commands'];
    if (commands !== undefined) {
      if (!Array.isArray(commands) || commands.length === 0) {
        throw invalid('commands', '"commands" must be a non-empty array of argv arrays, e.g. [["ls", "-l"]] (leave it out to allow any command)');
      }
      stream.commands = commands.map((argv: unknown, i) => stringList(argv, `commands[${i}]`, 'strings (one argv)'));
    }
    const maxSessions = body['maxSessions'];
    if (maxSessions !== undefined) {
      if (!isWholeNumber(maxSessions) || maxSessions < 1) throw invalid('maxSessions', '"maxSessions" must be a whole number, at least 1');
      stream.maxSessions = maxSessions;
    }
    scope = stream;
  } else {
    const rest: RestScope = {
      kind: 'rest',
      verb: requireString(body, 'verb') as ResourceVerb,
      resource: requireString(body, 'resource'),
      namespace: optionalString(body, 'namespace'),
      name: optionalString(body, 'name'),
    };
    scope = rest;
  }
  const ttlSeconds = requireTtl(body);
  const reason = requireString(body, 'reason');
  return { agent, scope, ttlSeconds, reason };
}

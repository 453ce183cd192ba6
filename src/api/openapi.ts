// The OpenAPI 3.0.3 description of the control endpoint, written by hand and served at
// GET /v1/openapi.json (no authentication: it holds no secrets). openapi.test.ts keeps it in step
// with the router: every route is documented and every documented operation is routed.
import { APPROVAL_STATES } from '../model/approval.js';
import { SESSION_END_REASONS, SESSION_TRANSPORTS, USER_ROLES } from '../store/types.js';
import { sendJson } from './http.js';
import type { Router } from './router.js';

export const OPENAPI_PATH = '/v1/openapi.json';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type OpenApiDocument = { [key: string]: Json };

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, examples?: Record<string, string>): Json => ({
  'application/json': {
    schema,
    ...(examples ? { examples: Object.fromEntries(Object.entries(examples).map(([k, v]) => [k, { $ref: `#/components/examples/${v}` }])) } : {}),
  },
});
const ok = (description: string, schema: Json, examples?: Record<string, string>): Json => ({ description, content: json(schema, examples) });
const items = (schema: Json): Json => ({
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: { items: { type: 'array', items: schema } },
});
const problem = (status: string): Json => ({ $ref: `#/components/responses/${status}` });
const iso = (description: string, nullable = false): Json => ({ type: 'string', format: 'date-time', description, ...(nullable ? { nullable: true } : {}) });
const pathParam = (name: string, description: string): Json => ({ name, in: 'path', required: true, description, schema: { type: 'string' } });
const queryParam = (name: string, description: string, schema: Json): Json => ({ name, in: 'query', required: false, description, schema });
const body = (schema: Json, required: boolean, examples?: Record<string, string>): Json => ({ required, content: json(schema, examples) });
const sha256Schema = (description: string): Json => ({ type: 'string', nullable: true, pattern: '^[0-9a-f]{64}$', description });
const readers = `Roles: ${['reviewer', 'approver', 'admin'].join(', ')}.`;
const deciders = 'Roles: approver, admin.';
const admins = 'Roles: admin.';

const STREAM_VERBS = ['exec', 'attach', 'portforward'];
const RESOURCE_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

const schemas: { [name: string]: Json } = {
  Error: {
    type: 'object',
    description: 'Every error answer.',
    required: ['error'],
    additionalProperties: false,
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        additionalProperties: false,
        properties: {
          code: { type: 'string', description: 'Stable code to branch on: INVALID_FIELD, UNKNOWN_FIELD, INVALID_QUERY, INVALID_STATE, INVALID_JSON, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, ...' },
          message: { type: 'string', description: 'For people; do not parse.' },
          field: { type: 'string', description: 'The body field or query parameter at fault, e.g. `ttlSeconds`, `commands[0][1]`.' },
        },
      },
    },
  },
  StreamScope: {
    type: 'object',
    description: 'exec/attach/portforward into one container of one pod.',
    required: ['kind', 'namespace', 'pod', 'container', 'verbs'],
    additionalProperties: false,
    properties: {
      kind: { type: 'string', enum: ['stream'] },
      namespace: { type: 'string' },
      pod: { type: 'string' },
      container: { type: 'string' },
      verbs: { type: 'array', minItems: 1, items: { type: 'string', enum: STREAM_VERBS } },
      commands: {
        type: 'array',
        description: 'Allow-list of exact exec argv; absent: any command.',
        minItems: 1,
        items: { type: 'array', minItems: 1, items: { type: 'string' } },
      },
      maxSessions: { type: 'integer', minimum: 1, description: 'Sessions allowed under the approval; absent: unlimited until expiry.' },
    },
  },
  RestScope: {
    type: 'object',
    description: 'One REST call shape: verb on resource (`deployments.apps`, `pods/ephemeralcontainers`) in a namespace, by name.',
    required: ['kind', 'verb', 'resource', 'namespace', 'name'],
    additionalProperties: false,
    properties: {
      kind: { type: 'string', enum: ['rest'] },
      verb: { type: 'string', enum: RESOURCE_VERBS },
      resource: { type: 'string' },
      namespace: { type: 'string', description: "'' for cluster-scoped resources." },
      name: { type: 'string', description: "'' for collection verbs (list, watch, deletecollection, create)." },
    },
  },
  ApprovalScope: {
    oneOf: [ref('StreamScope'), ref('RestScope')],
    discriminator: { propertyName: 'kind', mapping: { stream: '#/components/schemas/StreamScope', rest: '#/components/schemas/RestScope' } },
  },
  Approval: {
    type: 'object',
    description: 'A scoped, timed permission for one agent. Times are ISO 8601 UTC with milliseconds.',
    required: [
      'id',
      'state',
      'agent',
      'agentId',
      'scope',
      'requestedBy',
      'decidedBy',
      'reason',
      'ttlSeconds',
      'createdAt',
      'decidedAt',
      'expiresAt',
      'revokedAt',
      'sessionsStarted',
      'request',
    ],
    additionalProperties: false,
    properties: {
      id: { type: 'string', pattern: '^apr_[a-z0-9]+$' },
      state: { type: 'string', enum: [...APPROVAL_STATES] },
      agent: { type: 'string', description: 'The agent name (as given to `agent add`).' },
      agentId: { type: 'string' },
      scope: ref('ApprovalScope'),
      requestedBy: { type: 'string', description: '`agent:<name>` for a held request, `user:<name>` for a direct grant.' },
      decidedBy: { type: 'string', nullable: true, description: '`user:<name>` or `policy:<rule>@<sha256>`; null while pending.' },
      reason: { type: 'string', nullable: true, description: 'The grant reason, or the denial/revocation reason.' },
      ttlSeconds: { type: 'integer', minimum: 1, description: 'Validity once approved.' },
      createdAt: iso('When it was requested or granted.'),
      decidedAt: iso('When it was approved or denied.', true),
      expiresAt: iso('approved: decision + ttl; pending: when the hold gives up; null when denied.', true),
      revokedAt: iso('When it was revoked.', true),
      sessionsStarted: { type: 'integer', minimum: 0 },
      request: {
        type: 'object',
        nullable: true,
        description: 'For held requests: what the agent asked.',
        required: ['method', 'path'],
        additionalProperties: false,
        properties: { method: { type: 'string' }, path: { type: 'string' }, command: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
  ApprovalList: items(ref('Approval')),
  StreamGrant: {
    type: 'object',
    description: 'A direct grant of a stream scope.',
    required: ['agent', 'namespace', 'pod', 'container', 'verbs', 'ttlSeconds', 'reason'],
    additionalProperties: false,
    properties: {
      agent: { type: 'string' },
      namespace: { type: 'string' },
      pod: { type: 'string' },
      container: { type: 'string' },
      verbs: { type: 'array', minItems: 1, items: { type: 'string', enum: STREAM_VERBS } },
      commands: { type: 'array', minItems: 1, items: { type: 'array', minItems: 1, items: { type: 'string' } } },
      maxSessions: { type: 'integer', minimum: 1 },
      ttlSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
      reason: { type: 'string', minLength: 1 },
    },
  },
  RestGrant: {
    type: 'object',
    description: 'A direct grant of a REST scope.',
    required: ['agent', 'verb', 'resource', 'ttlSeconds', 'reason'],
    additionalProperties: false,
    properties: {
      agent: { type: 'string' },
      verb: { type: 'string', enum: RESOURCE_VERBS },
      resource: { type: 'string' },
      namespace: { type: 'string', description: "Absent or '' for cluster-scoped resources." },
      name: { type: 'string', description: "Absent or '' for collection verbs." },
      ttlSeconds: { type: 'integer', minimum: 1, maximum: 86400 },
      reason: { type: 'string', minLength: 1 },
    },
  },
  GrantRequest: {
    description: 'Either a stream scope (pod, container, verbs, ...) or a REST scope (verb, resource, ...); a body with fields of both is refused.',
    oneOf: [ref('StreamGrant'), ref('RestGrant')],
  },
  ApproveRequest: {
    type: 'object',
    additionalProperties: false,
    properties: {
      ttlSeconds: { type: 'integer', minimum: 1, maximum: 86400, description: 'Validity from now; default: what the request carried (900 s).' },
      reason: { type: 'string' },
    },
  },
  DenyRequest: {
    type: 'object',
    required: ['reason'],
    additionalProperties: false,
    properties: { reason: { type: 'string', minLength: 1 } },
  },
  RevokeRequest: {
    type: 'object',
    additionalProperties: false,
    properties: { reason: { type: 'string' } },
  },
  User: {
    type: 'object',
    required: ['id', 'name', 'role', 'createdAt', 'disabledAt'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      role: { type: 'string', enum: [...USER_ROLES] },
      createdAt: iso('When the user was created.'),
      disabledAt: iso('When the user was disabled.', true),
    },
  },
  Agent: {
    type: 'object',
    required: ['id', 'name', 'createdAt', 'revokedAt'],
    additionalProperties: false,
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      createdAt: iso('When the agent was created.'),
      revokedAt: iso('When the agent was revoked; null while active.', true),
    },
  },
  AuditRecord: {
    type: 'object',
    description: 'One row of the hash-chained audit log. `details` and `untrustedClientHints` are canonical JSON text.',
    required: ['id', 'chainVersion', 'time', 'event', 'prevHash', 'hash'],
    properties: {
      id: { type: 'integer' },
      chainVersion: { type: 'integer' },
      time: iso('When it happened.'),
      event: { type: 'string', description: '`request`, `session.start`, `approval.granted`, `approval.approved`, ...' },
      agentId: { type: 'string', nullable: true },
      agentName: { type: 'string', nullable: true },
      actor: { type: 'string', nullable: true },
      source: { type: 'string', nullable: true },
      method: { type: 'string', nullable: true },
      path: { type: 'string', nullable: true },
      verb: { type: 'string', nullable: true },
      apiGroup: { type: 'string', nullable: true },
      resource: { type: 'string', nullable: true },
      subresource: { type: 'string', nullable: true },
      namespace: { type: 'string', nullable: true },
      name: { type: 'string', nullable: true },
      stream: { type: 'string', nullable: true },
      decision: { type: 'string', nullable: true, enum: ['allow', 'approval', 'deny', 'error', null] },
      rule: { type: 'string', nullable: true },
      policyHash: { type: 'string', nullable: true },
      approvalId: { type: 'string', nullable: true },
      sessionId: { type: 'string', nullable: true },
      statusCode: { type: 'integer', nullable: true },
      bytesIn: { type: 'integer', nullable: true },
      bytesOut: { type: 'integer', nullable: true },
      durationMs: { type: 'integer', nullable: true },
      untrustedClientHints: { type: 'string', nullable: true },
      details: { type: 'string', nullable: true },
      prevHash: { type: 'string' },
      hash: { type: 'string' },
    },
  },
  AuditVerifyResult: {
    type: 'object',
    description: '`ok: true` with the row count and head, or `ok: false` with the first bad row.',
    required: ['ok'],
    properties: {
      ok: { type: 'boolean' },
      rows: { type: 'integer' },
      head: {
        type: 'object',
        properties: { rows: { type: 'integer' }, lastId: { type: 'integer' }, headHash: { type: 'string' } },
      },
      rowId: { type: 'integer' },
      reason: { type: 'string', enum: ['hash-mismatch', 'prev-mismatch', 'gap', 'malformed', 'truncated', 'anchor-mismatch'] },
      message: { type: 'string' },
      rowsVerified: { type: 'integer' },
    },
  },
  SessionHashes: {
    type: 'object',
    description: 'Every hash of a session in one place (sha256, hex): the files as the bastion wrote them and each channel\'s exact bytes. null: not recorded (yet).',
    required: ['cast', 'raw', 'stdin', 'stdout', 'stderr'],
    additionalProperties: false,
    properties: {
      cast: sha256Schema('The asciicast file as recorded.'),
      raw: sha256Schema('The raw sidecar (exact bytes of every channel).'),
      stdin: sha256Schema('The bytes the agent sent.'),
      stdout: sha256Schema('The bytes of the stdout channel.'),
      stderr: sha256Schema('The bytes of the stderr channel.'),
    },
  },
  Session: {
    type: 'object',
    description: 'One exec/attach/portforward session as the store has it, plus `sha256` with every hash. Times are ISO 8601 UTC with milliseconds.',
    required: [
      'id',
      'approvalId',
      'agent',
      'agentId',
      'state',
      'operation',
      'transport',
      'protocol',
      'upstreamProtocol',
      'namespace',
      'pod',
      'container',
      'command',
      'tty',
      'startedAt',
      'endedAt',
      'endReason',
      'exitCode',
      'status',
      'bytesIn',
      'bytesOut',
      'castPath',
      'castSha256',
      'rawPath',
      'rawSha256',
      'channelSha256',
      'files',
      'sha256',
    ],
    additionalProperties: false,
    properties: {
      id: { type: 'string', pattern: '^ses_[a-z2-7]+$' },
      approvalId: { type: 'string', nullable: true, description: 'null when a policy rule allowed the session without an approval.' },
      agent: { type: 'string', description: 'The agent name.' },
      agentId: { type: 'string' },
      state: { type: 'string', enum: ['open', 'ended'] },
      operation: { type: 'string', nullable: true, enum: [...STREAM_VERBS, null] },
      transport: { type: 'string', enum: [...SESSION_TRANSPORTS] },
      protocol: { type: 'string', description: 'The agent-side subprotocol, e.g. `v5.channel.k8s.io`.' },
      upstreamProtocol: { type: 'string', nullable: true },
      namespace: { type: 'string' },
      pod: { type: 'string' },
      container: { type: 'string' },
      command: { type: 'array', items: { type: 'string' }, description: 'exec argv ([] for attach).' },
      tty: { type: 'boolean' },
      startedAt: iso('When the session started.'),
      endedAt: iso('When it ended; null while open.', true),
      endReason: { type: 'string', nullable: true, enum: [...SESSION_END_REASONS, null] },
      exitCode: { type: 'integer', nullable: true },
      status: { type: 'object', nullable: true, description: 'The final metav1.Status sent to the agent.' },
      bytesIn: { type: 'integer', nullable: true, description: 'Bytes from the agent to upstream; null while open.' },
      bytesOut: { type: 'integer', nullable: true, description: 'Bytes from upstream to the agent; null while open.' },
      castPath: { type: 'string', nullable: true, description: 'Where the bastion keeps the asciicast.' },
      castSha256: sha256Schema('The asciicast file.'),
      rawPath: { type: 'string', nullable: true, description: 'Where the bastion keeps the raw sidecar.' },
      rawSha256: sha256Schema('The raw sidecar.'),
      channelSha256: {
        type: 'object',
        nullable: true,
        description: 'sha256 of each channel\'s exact bytes, by channel name (stdin, stdout, stderr, ...).',
        additionalProperties: { type: 'string' },
      },
      files: {
        type: 'array',
        nullable: true,
        description: 'Regular files carried by the session\'s tar stream (kubectl cp), when there was one.',
        items: {
          type: 'object',
          required: ['name', 'size', 'sha256'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, size: { type: 'integer', minimum: 0 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
        },
      },
      sha256: ref('SessionHashes'),
    },
  },
  SessionList: items(ref('Session')),
  PolicyVersion: {
    type: 'object',
    required: ['hash', 'source', 'origin', 'firstLoadedAt', 'lastLoadedAt', 'loadCount'],
    additionalProperties: false,
    properties: {
      hash: { type: 'string', description: 'sha256 (hex) of the policy file.' },
      source: { type: 'string', description: 'The policy text.' },
      origin: { type: 'string', description: 'A file path, or `builtin:default`.' },
      firstLoadedAt: iso('First load.'),
      lastLoadedAt: iso('Latest load.'),
      loadCount: { type: 'integer' },
    },
  },
};

const examples: { [name: string]: Json } = {
  PendingExec: {
    summary: 'An exec held for approval',
    value: {
      id: 'apr_k3q8m2x7v4n9p6r1t5w0',
      state: 'pending',
      agent: 'claude',
      agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
      scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] },
      requestedBy: 'agent:claude',
      decidedBy: null,
      reason: null,
      ttlSeconds: 900,
      createdAt: '2025-06-02T09:14:03.120Z',
      decidedAt: null,
      expiresAt: '2025-06-02T09:19:03.120Z',
      revokedAt: null,
      sessionsStarted: 0,
      request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['sh', '-c', 'ls /data'] },
    },
  },
  ApprovedStreamGrant: {
    summary: 'A direct stream grant with a command allow-list',
    value: {
      id: 'apr_b7c2d9f4g1h8j5k3m6n0',
      state: 'approved',
      agent: 'claude',
      agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
      scope: {
        kind: 'stream',
        namespace: 'demo',
        pod: 'web-0',
        container: 'app',
        verbs: ['exec', 'attach'],
        commands: [['ls', '-l', '/data'], ['cat', '/data/config.yaml']],
        maxSessions: 3,
      },
      requestedBy: 'user:alice',
      decidedBy: 'user:alice',
      reason: 'INC-4211: inspect the data volume',
      ttlSeconds: 600,
      createdAt: '2025-06-02T09:20:00.000Z',
      decidedAt: '2025-06-02T09:20:00.000Z',
      expiresAt: '2025-06-02T09:30:00.000Z',
      revokedAt: null,
      sessionsStarted: 1,
      request: null,
    },
  },
  RevokedRestGrant: {
    summary: 'A REST grant, revoked',
    value: {
      id: 'apr_c4d5e6f7g8h9j0k1m2n3',
      state: 'revoked',
      agent: 'claude',
      agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
      scope: { kind: 'rest', verb: 'delete', resource: 'namespaces', namespace: '', name: 'demo' },
      requestedBy: 'user:alice',
      decidedBy: 'user:alice',
      reason: 'change window closed early',
      ttlSeconds: 3600,
      createdAt: '2025-06-02T10:00:00.000Z',
      decidedAt: '2025-06-02T10:00:00.000Z',
      expiresAt: '2025-06-02T11:00:00.000Z',
      revokedAt: '2025-06-02T10:05:12.345Z',
      sessionsStarted: 0,
      request: null,
    },
  },
  DeniedRest: {
    summary: 'A held REST request, denied',
    value: {
      id: 'apr_d1e2f3g4h5j6k7m8n9p0',
      state: 'denied',
      agent: 'claude',
      agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
      scope: { kind: 'rest', verb: 'get', resource: 'secrets', namespace: 'demo', name: 'db-password' },
      requestedBy: 'agent:claude',
      decidedBy: 'user:bob',
      reason: 'not during the freeze',
      ttlSeconds: 900,
      createdAt: '2025-06-02T11:00:00.000Z',
      decidedAt: '2025-06-02T11:01:30.000Z',
      expiresAt: null,
      revokedAt: null,
      sessionsStarted: 0,
      request: { method: 'GET', path: '/api/v1/namespaces/demo/secrets/db-password' },
    },
  },
  EndedSession: {
    summary: 'An ended exec session with its recording',
    value: {
      id: 'ses_q4n7b2x6k3m5p7r2t5vz',
      approvalId: 'apr_b7c2d9f4g1h8j5k3m6n0',
      agent: 'claude',
      agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
      state: 'ended',
      operation: 'exec',
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      upstreamProtocol: 'v5.channel.k8s.io',
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      command: ['ls', '-l', '/data'],
      tty: false,
      startedAt: '2025-06-02T09:21:00.000Z',
      endedAt: '2025-06-02T09:21:01.250Z',
      endReason: 'completed',
      exitCode: 0,
      status: { metadata: {}, status: 'Success' },
      bytesIn: 0,
      bytesOut: 412,
      castPath: '/var/lib/kube-bastion/recordings/apr_b7c2d9f4g1h8j5k3m6n0/ses_q4n7b2x6k3m5p7r2t5vz.cast',
      castSha256: '9b2c0d6f1e4a7b8c3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4',
      rawPath: '/var/lib/kube-bastion/recordings/apr_b7c2d9f4g1h8j5k3m6n0/ses_q4n7b2x6k3m5p7r2t5vz.raw',
      rawSha256: '1f2e3d4c5b6a79881726354433221100ffeeddccbbaa99887766554433221100',
      channelSha256: {
        stdin: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        stdout: '5d41402abc4b2a76b9719d911017c592aaf4c3b2e1d0f9e8d7c6b5a493827160',
        stderr: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      },
      files: null,
      sha256: {
        cast: '9b2c0d6f1e4a7b8c3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4',
        raw: '1f2e3d4c5b6a79881726354433221100ffeeddccbbaa99887766554433221100',
        stdin: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        stdout: '5d41402abc4b2a76b9719d911017c592aaf4c3b2e1d0f9e8d7c6b5a493827160',
        stderr: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      },
    },
  },
  StreamGrantBody: {
    summary: 'Grant exec (and attach) into one container',
    value: {
      agent: 'claude',
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      verbs: ['exec', 'attach'],
      commands: [['ls', '-l', '/data'], ['cat', '/data/config.yaml']],
      maxSessions: 3,
      ttlSeconds: 600,
      reason: 'INC-4211: inspect the data volume',
    },
  },
  RestGrantBody: {
    summary: 'Grant one REST call',
    value: { agent: 'claude', verb: 'delete', resource: 'namespaces', name: 'demo', ttlSeconds: 3600, reason: 'tear down the demo' },
  },
  InvalidField: {
    summary: 'A bad body',
    value: { error: { code: 'INVALID_FIELD', message: '"ttlSeconds" must be a whole number of seconds, at least 1', field: 'ttlSeconds' } },
  },
};

const errorResponse = (description: string, example?: string): Json => ({
  description,
  content: json(ref('Error'), example ? { [example]: example } : undefined),
});

const responses: { [name: string]: Json } = {
  BadRequest: errorResponse('The body or query is invalid; `error.field` names the field.', 'InvalidField'),
  Unauthorized: errorResponse('No bearer token, or an unknown or disabled one.'),
  Forbidden: errorResponse("The user's role may not do this (or, for decisions, nobody approves a request they made)."),
  NotFound: errorResponse('No such object.'),
};

const userErrors = { '401': problem('Unauthorized'), '403': problem('Forbidden') };
const approvalExamples = { pending: 'PendingExec', approvedStream: 'ApprovedStreamGrant', revokedRest: 'RevokedRestGrant', denied: 'DeniedRest' };

const FORMAT_PARAM: Json = queryParam('format', 'Convert the casts to this asciicast version (default: each as recorded).', { type: 'string', enum: ['v2', 'v3'] });
const EVIDENCE_LAYOUT =
  'One ustar archive (streamed, with Content-Length) under a top folder `evidence-<id>/`: `approval.json`, `sessions/<id>.json` ' +
  '(the session with every hash), `sessions/<id>.cast`, `sessions/<id>.raw`, `audit.jsonl` (every audit row of the approval, ' +
  'refused attempts included, and of its sessions, exactly as stored), `manifest.json` (path, size and sha256 of every file, the ' +
  "subject, and the bastion's Ed25519 public key and key id) and `manifest.sig` (base64 Ed25519 signature over manifest.json's exact bytes). " +
  'Check it with `kube-bastion verify DIR [--key ed25519.pub]`. Every export is an audit event (`evidence.exported`).';
const EVIDENCE_RESPONSE: Json = {
  description: 'The archive (Content-Disposition: attachment; filename="evidence-<id>.tar"; X-Evidence-Key-Id and X-Evidence-Manifest-Sha256 headers).',
  content: { 'application/x-tar': { schema: { type: 'string', format: 'binary' } } },
};

const paths: { [path: string]: Json } = {
  '/healthz': {
    get: {
      operationId: 'healthz',
      tags: ['operations'],
      summary: 'Liveness',
      security: [],
      responses: { '200': ok('Serving.', { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } }) },
    },
  },
  '/metrics': {
    get: {
      operationId: 'metrics',
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format 0.0.4)',
      security: [],
      responses: { '200': { description: 'Metrics.', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  },
  [OPENAPI_PATH]: {
    get: {
      operationId: 'openapi',
      tags: ['operations'],
      summary: 'This description',
      security: [],
      responses: { '200': ok('The OpenAPI 3.0.3 document.', { type: 'object' }) },
    },
  },
  '/v1/whoami': {
    get: {
      operationId: 'whoami',
      tags: ['users'],
      summary: 'The user the token belongs to',
      description: 'Any role.',
      responses: { '200': ok('The user.', ref('User')), '401': problem('Unauthorized') },
    },
  },
  '/v1/agents': {
    get: {
      operationId: 'listAgents',
      tags: ['agents'],
      summary: 'List agents',
      description: readers,
      responses: { '200': ok('Agents.', items(ref('Agent'))), ...userErrors },
    },
    post: {
      operationId: 'createAgent',
      tags: ['agents'],
      summary: 'Create an agent; its token and kubeconfig are shown once',
      description: admins,
      requestBody: body({ type: 'object', required: ['name'], additionalProperties: false, properties: { name: { type: 'string' } } }, true),
      responses: {
        '201': ok('Created.', {
          type: 'object',
          required: ['agent', 'token', 'kubeconfig'],
          additionalProperties: false,
          properties: { agent: ref('Agent'), token: { type: 'string' }, kubeconfig: { type: 'string' } },
        }),
        '400': problem('BadRequest'),
        ...userErrors,
        '409': errorResponse('The name is taken (names are never reused).'),
      },
    },
  },
  '/v1/agents/{name}': {
    get: {
      operationId: 'getAgent',
      tags: ['agents'],
      summary: 'One agent',
      description: readers,
      parameters: [pathParam('name', 'Agent name.')],
      responses: { '200': ok('The agent.', ref('Agent')), ...userErrors, '404': problem('NotFound') },
    },
  },
  '/v1/agents/{name}/revoke': {
    post: {
      operationId: 'revokeAgent',
      tags: ['agents'],
      summary: 'Revoke an agent (idempotent)',
      description: admins,
      parameters: [pathParam('name', 'Agent name.')],
      responses: { '200': ok('The revoked agent.', ref('Agent')), ...userErrors, '404': problem('NotFound') },
    },
  },
  '/v1/users': {
    get: {
      operationId: 'listUsers',
      tags: ['users'],
      summary: 'List users',
      description: admins,
      responses: { '200': ok('Users.', items(ref('User'))), ...userErrors },
    },
    post: {
      operationId: 'createUser',
      tags: ['users'],
      summary: 'Create a user; its token is shown once',
      description: admins,
      requestBody: body(
        {
          type: 'object',
          required: ['name', 'role'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, role: { type: 'string', enum: [...USER_ROLES] } },
        },
        true,
      ),
      responses: {
        '201': ok('Created.', {
          type: 'object',
          required: ['user', 'token'],
          additionalProperties: false,
          properties: { user: ref('User'), token: { type: 'string' } },
        }),
        '400': problem('BadRequest'),
        ...userErrors,
        '409': errorResponse('The name is taken.'),
      },
    },
  },
  '/v1/audit': {
    get: {
      operationId: 'queryAudit',
      tags: ['audit'],
      summary: 'Audit rows, oldest first',
      description: readers,
      parameters: [
        queryParam('since', 'Only rows at or after this ISO 8601 time.', { type: 'string', format: 'date-time' }),
        queryParam('agent', 'Agent name or id.', { type: 'string' }),
        queryParam('event', 'Event kind, e.g. `approval.approved`.', { type: 'string' }),
        queryParam('limit', 'At most this many rows (default 100).', { type: 'integer', minimum: 0, maximum: 99999 }),
      ],
      responses: { '200': ok('Rows.', items(ref('AuditRecord'))), '400': problem('BadRequest'), ...userErrors },
    },
  },
  '/v1/audit/verify': {
    get: {
      operationId: 'verifyAudit',
      tags: ['audit'],
      summary: "Check the audit log's hash chain",
      description: readers,
      responses: { '200': ok('The verdict.', ref('AuditVerifyResult')), ...userErrors },
    },
  },
  '/v1/policy': {
    get: {
      operationId: 'getPolicy',
      tags: ['policy'],
      summary: 'The policy in force and every version ever loaded',
      description: readers,
      responses: {
        '200': ok('Policy.', {
          type: 'object',
          required: ['current', 'versions'],
          additionalProperties: false,
          properties: {
            current: {
              type: 'object',
              required: ['hash', 'origin'],
              additionalProperties: false,
              properties: { hash: { type: 'string' }, origin: { type: 'string' } },
            },
            versions: { type: 'array', items: ref('PolicyVersion') },
          },
        }),
        ...userErrors,
      },
    },
  },
  '/v1/approvals': {
    get: {
      operationId: 'listApprovals',
      tags: ['approvals'],
      summary: 'List approvals, newest first',
      description: `${readers} Unknown query parameters are refused.`,
      parameters: [
        queryParam('state', 'Only approvals in this state (expiry is applied as of now).', { type: 'string', enum: [...APPROVAL_STATES] }),
        queryParam('agent', 'Only approvals for this agent (name or id).', { type: 'string' }),
      ],
      responses: { '200': ok('Approvals.', ref('ApprovalList')), '400': problem('BadRequest'), ...userErrors },
    },
    post: {
      operationId: 'grantApproval',
      tags: ['approvals'],
      summary: 'Grant a scope to an agent directly (approved at once)',
      description: `${deciders} Every grant is an audit event.`,
      requestBody: body(ref('GrantRequest'), true, { stream: 'StreamGrantBody', rest: 'RestGrantBody' }),
      responses: {
        '201': ok('The approval.', ref('Approval'), { stream: 'ApprovedStreamGrant' }),
        '400': problem('BadRequest'),
        ...userErrors,
      },
    },
  },
  '/v1/approvals/{id}': {
    get: {
      operationId: 'getApproval',
      tags: ['approvals'],
      summary: 'One approval',
      description: readers,
      parameters: [pathParam('id', 'Approval id (`apr_...`).')],
      responses: { '200': ok('The approval.', ref('Approval'), approvalExamples), ...userErrors, '404': problem('NotFound') },
    },
  },
  '/v1/approvals/{id}/approve': {
    post: {
      operationId: 'approveApproval',
      tags: ['approvals'],
      summary: 'Approve a pending request',
      description: `${deciders} Nobody approves a request they made. The body may be left out.`,
      parameters: [pathParam('id', 'Approval id.')],
      requestBody: body(ref('ApproveRequest'), false),
      responses: {
        '200': ok('The approved approval.', ref('Approval')),
        '400': problem('BadRequest'),
        ...userErrors,
        '404': problem('NotFound'),
      },
    },
  },
  '/v1/approvals/{id}/deny': {
    post: {
      operationId: 'denyApproval',
      tags: ['approvals'],
      summary: 'Deny a pending request',
      description: deciders,
      parameters: [pathParam('id', 'Approval id.')],
      requestBody: body(ref('DenyRequest'), true),
      responses: {
        '200': ok('The denied approval.', ref('Approval'), { denied: 'DeniedRest' }),
        '400': problem('BadRequest'),
        ...userErrors,
        '404': problem('NotFound'),
      },
    },
  },
  '/v1/approvals/{id}/revoke': {
    post: {
      operationId: 'revokeApproval',
      tags: ['approvals'],
      summary: 'Revoke an approved approval; sessions under it are cut',
      description: `${deciders} The body may be left out.`,
      parameters: [pathParam('id', 'Approval id.')],
      requestBody: body(ref('RevokeRequest'), false),
      responses: {
        '200': ok('The revoked approval.', ref('Approval'), { revoked: 'RevokedRestGrant' }),
        '400': problem('BadRequest'),
        ...userErrors,
        '404': problem('NotFound'),
      },
    },
  },
  '/v1/sessions': {
    get: {
      operationId: 'listSessions',
      tags: ['sessions'],
      summary: 'List sessions, newest first',
      description: `${readers} Unknown query parameters are refused.`,
      parameters: [
        queryParam('approval', 'Only sessions under this approval.', { type: 'string' }),
        queryParam('agent', 'Only sessions of this agent (name or id).', { type: 'string' }),
        queryParam('state', 'Only open or only ended sessions.', { type: 'string', enum: ['open', 'ended'] }),
        queryParam('since', 'Only sessions started at or after this ISO 8601 time.', { type: 'string', format: 'date-time' }),
        queryParam('until', 'Only sessions started at or before this ISO 8601 time.', { type: 'string', format: 'date-time' }),
      ],
      responses: { '200': ok('Sessions.', ref('SessionList')), '400': problem('BadRequest'), ...userErrors },
    },
  },
  '/v1/sessions/{id}': {
    get: {
      operationId: 'getSession',
      tags: ['sessions'],
      summary: 'One session, with every hash',
      description: readers,
      parameters: [pathParam('id', 'Session id (`ses_...`).')],
      responses: { '200': ok('The session.', ref('Session'), { ended: 'EndedSession' }), ...userErrors, '404': problem('NotFound') },
    },
  },
  '/v1/sessions/{id}/recording': {
    get: {
      operationId: 'getSessionRecording',
      tags: ['sessions'],
      summary: 'The asciicast recording (streamed)',
      description:
        `${readers} As recorded (byte for byte, its sha256 is \`sha256.cast\`), or converted to the asked asciicast version. ` +
        'An open session answers what has been recorded so far. Every download is an audit event (`session.recording.accessed`). ' +
        'The `X-Asciicast-Version` header says which version the body is.',
      parameters: [
        pathParam('id', 'Session id.'),
        queryParam('format', 'Asciicast version to answer in (default: as recorded).', { type: 'string', enum: ['v2', 'v3'] }),
      ],
      responses: {
        '200': {
          description: 'The cast (Content-Disposition: attachment; filename="<id>.cast").',
          content: { 'application/x-asciicast': { schema: { type: 'string', description: 'asciicast v2 or v3: a JSON header line, then one JSON event per line.' } } },
        },
        '400': problem('BadRequest'),
        ...userErrors,
        '404': errorResponse('No such session, or it has no recording on the bastion.'),
        '409': errorResponse('The recording is not a readable asciicast, so it cannot be converted (download it as recorded).'),
      },
    },
  },
  '/v1/sessions/{id}/raw': {
    get: {
      operationId: 'getSessionRaw',
      tags: ['sessions'],
      summary: 'The raw sidecar: the exact bytes of every channel (streamed)',
      description: `${readers} Its sha256 is \`sha256.raw\`. Every download is an audit event (\`session.recording.accessed\`).`,
      parameters: [pathParam('id', 'Session id.')],
      responses: {
        '200': {
          description: 'The sidecar (Content-Disposition: attachment; filename="<id>.raw").',
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        '400': problem('BadRequest'),
        ...userErrors,
        '404': errorResponse('No such session, or it has no sidecar on the bastion.'),
      },
    },
  },
  '/v1/approvals/{id}/evidence': {
    get: {
      operationId: 'getApprovalEvidence',
      tags: ['evidence'],
      summary: "The approval's evidence archive",
      description: `${readers} ${EVIDENCE_LAYOUT}`,
      parameters: [pathParam('id', 'Approval id.'), FORMAT_PARAM],
      responses: { '200': EVIDENCE_RESPONSE, '400': problem('BadRequest'), ...userErrors, '404': problem('NotFound') },
    },
  },
  '/v1/evidence': {
    get: {
      operationId: 'getEvidence',
      tags: ['evidence'],
      summary: 'The evidence archive for an approval, a session or a time range',
      description:
        `${readers} Exactly one of \`approval\`, \`session\`, \`since\`. A session export holds its approval's record and audit rows; ` +
        'a time range holds every session started, approval created and audit row written in it, with the approval records under `approvals/<id>.json`. ' +
        EVIDENCE_LAYOUT,
      parameters: [
        queryParam('approval', 'Approval id.', { type: 'string' }),
        queryParam('session', 'Session id.', { type: 'string' }),
        queryParam('since', 'Start of the time range (ISO 8601).', { type: 'string', format: 'date-time' }),
        queryParam('until', 'End of the time range (ISO 8601; with since).', { type: 'string', format: 'date-time' }),
        FORMAT_PARAM,
      ],
      responses: { '200': EVIDENCE_RESPONSE, '400': problem('BadRequest'), ...userErrors, '404': problem('NotFound') },
    },
  },
};

/** The document (a fresh copy each call). */
export function openApiDocument(): OpenApiDocument {
  const doc: OpenApiDocument = {
    openapi: '3.0.3',
    info: {
      title: 'kube-bastion control API',
      version: '1',
      description:
        'The control endpoint of kube-bastion: approvals, sessions and evidence, agents, users, audit and policy for approvers, reviewers and admins. ' +
        'Send `Authorization: Bearer <user token>` (kube-bastion user add NAME --role ROLE). Bodies are JSON with camelCase fields; ' +
        'list endpoints answer {"items": [...]}; errors answer {"error": {"code", "message", "field"?}}.',
    },
    servers: [{ url: 'http://127.0.0.1:8080', description: 'The default --control-listen' }],
    security: [{ bearer: [] }],
    tags: [
      { name: 'approvals', description: 'Scoped, timed permissions decided outside the agent.' },
      { name: 'sessions', description: 'Recorded exec/attach/portforward sessions and their files.' },
      { name: 'evidence', description: 'Signed evidence archives for review.' },
      { name: 'agents' },
      { name: 'users' },
      { name: 'audit' },
      { name: 'policy' },
      { name: 'operations' },
    ],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A user token (role approver, reviewer or admin).' } },
      schemas,
      responses,
      examples,
    },
  };
  return structuredClone(doc);
}

/** GET /v1/openapi.json, without authentication. */
export function registerOpenApiRoute(router: Router): void {
  const doc = openApiDocument();
  router.add('GET', OPENAPI_PATH, async ({ res }) => sendJson(res, 200, doc));
}

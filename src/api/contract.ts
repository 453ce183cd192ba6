// The control API's route table: every route once, with the schemas it validates with, who may call
// it and documented examples. app.ts mounts the express routes from these entries, openapi.ts
// generates GET /v1/openapi.json from them, and openapi-examples.test.ts sends every example to a
// real ControlEndpoint and checks the documented answer.
import { z } from 'zod';
import {
  ApprovalSchema,
  ApproveBodySchema,
  DenyBodySchema,
  GrantBodySchema,
  OptionalReasonSchema,
  RevokeBodySchema,
} from '../model/approval-schema.js';
import { ReviewRecordSchema } from '../model/review-record-schema.js';
import { APPROVAL_STATES, DECIDER_ROLES, SESSION_STATES, USER_ROLES, type UserRole } from '../model/vocabulary.js';
import {
  APPROVED_FORWARD,
  APPROVED_STREAM,
  DENIED_REST,
  ENDED_SESSION,
  FORWARD_SESSION,
  PENDING_FORWARD,
  EXAMPLE_AGENT,
  EXAMPLE_AGENT_ID,
  EXAMPLE_AGENT_OWNER,
  EXAMPLE_POLICY,
  PENDING_EXEC,
  PENDING_REST,
  REVOKED_REST,
  EXAMPLE_SIGNING_KEY,
} from './examples.js';
import { route } from './route-spec.js';
import {
  AgentListSchema,
  AgentSchema,
  ApprovalListSchema,
  AuditRecordListSchema,
  AuditTrustReportSchema,
  CastFormatParam,
  CreateAgentBodySchema,
  CreatedAgentSchema,
  CreatedUserSchema,
  CreateUserBodySchema,
  HealthSchema,
  PolicySchema,
  RotatedTokenSchema,
  SessionDetailSchema,
  SessionListSchema,
  SigningKeyInfoSchema,
  UserListSchema,
  UserSchema,
} from './schemas.js';

export const ANY_ROLE: readonly UserRole[] = USER_ROLES;
export const READERS: readonly UserRole[] = ['reviewer', 'approver', 'admin'];
export const DECIDERS: readonly UserRole[] = DECIDER_ROLES;
export const ADMIN: readonly UserRole[] = ['admin'];

export const OPENAPI_PATH = '/v1/openapi.json';

// ---------------------------------------------------------------------------------------------
// Parameters

const nonEmpty = z.string().regex(/\S/, { error: 'must not be empty' });
const isoTime = z
  .string()
  .refine((v) => /^\d{4}-\d\d-\d\d/.test(v) && !Number.isNaN(Date.parse(v)), { error: 'must be an ISO 8601 time, e.g. 2025-06-02T09:00:00Z' })
  .meta({ format: 'date-time' });

const ApprovalIdParams = z.strictObject({ id: z.string().describe('Approval id (`apr_...`).') });
const SessionIdParams = z.strictObject({ id: z.string().describe('Session id (`ses_...`).') });
const AgentNameParams = z.strictObject({ name: z.string().describe('Agent name.') });
const UserNameParams = z.strictObject({ name: z.string().describe('User name.') });

const ApprovalListQuery = z.strictObject({
  state: z.enum(APPROVAL_STATES, { error: `must be one of ${APPROVAL_STATES.join(', ')}` }).optional().describe('Only approvals in this state (expiry applied as of now).'),
  agent: nonEmpty.optional().describe('Only approvals for this agent (name or id).'),
});

const AuditQuery = z.object({
  since: isoTime.optional().describe('Only rows at or after this time.'),
  agent: z.string().optional().describe('Agent name or id.'),
  event: z.string().optional().describe('Event kind, e.g. `approval.approved`.'),
  limit: z
    .string()
    .regex(/^\d{1,5}$/, { error: 'must be a whole number (at most 99999)' })
    .transform(Number)
    .optional()
    .describe('At most this many rows (default 100).'),
});

const SessionListQuery = z.strictObject({
  approval: nonEmpty.optional().describe('Only sessions under this approval.'),
  agent: nonEmpty.optional().describe('Only sessions of this agent (name or id).'),
  state: z.enum(SESSION_STATES, { error: 'must be open or ended' }).optional(),
  since: isoTime.optional().describe('Only sessions started at or after this time.'),
  until: isoTime.optional().describe('Only sessions started at or before this time.'),
});

const FormatQuery = z.strictObject({ format: CastFormatParam.optional().describe('Convert casts to this asciicast version (default: as recorded).') });

const EvidenceQuery = z
  .strictObject({
    approval: nonEmpty.optional().describe('Approval id.'),
    session: nonEmpty.optional().describe('Session id.'),
    since: isoTime.optional().describe('Start of a time range.'),
    until: isoTime.optional().describe('End of the time range (with since).'),
    format: CastFormatParam.optional().describe('Convert casts to this asciicast version (default: each as recorded).'),
  })
  .superRefine((q, ctx) => {
    const given = [q.approval, q.session, q.since].filter((v) => v !== undefined).length;
    if (given !== 1) ctx.addIssue({ code: 'custom', path: [given === 0 ? 'approval' : 'session'], message: 'is one of "approval", "session" or "since": give exactly one' });
    else if (q.until !== undefined && q.since === undefined) ctx.addIssue({ code: 'custom', path: ['until'], message: 'goes with "since"' });
    else if (q.since !== undefined && q.until !== undefined && Date.parse(q.until) < Date.parse(q.since)) {
      ctx.addIssue({ code: 'custom', path: ['until'], message: 'is before "since"' });
    }
  });

// ---------------------------------------------------------------------------------------------
// Descriptions

const EVIDENCE_LAYOUT =
  'One ustar archive (streamed, with Content-Length) under a top folder `evidence-<id>/`: `approval.json`, `sessions/<id>.json` ' +
  '(the session with every hash), `sessions/<id>.cast`, `sessions/<id>.raw`, `audit.jsonl` (every audit row of the approval, ' +
  'refused attempts included, and of its sessions, exactly as stored), `manifest.json` (path, size and sha256 of every file, the ' +
  "subject, and the bastion's Ed25519 public key and key id) and `manifest.sig` (base64 Ed25519 signature over manifest.json's exact bytes). " +
  'Check it with `kube-bastion verify DIR [--key ed25519.pub]`. Every export is an audit event (`evidence.exported`).';

const TAR = {
  status: 200,
  description: 'The archive (Content-Disposition: attachment; filename="evidence-<id>.tar"; X-Evidence-Key-Id and X-Evidence-Manifest-Sha256 headers).',
  contentType: 'application/x-tar',
  binary: true,
} as const;

const UNAUTHENTICATED = { error: { code: 'UNAUTHENTICATED', message: 'send Authorization: Bearer <user token> (kube-bastion user add NAME --role ROLE)' } };
const forbidden = (role: UserRole, roles: readonly UserRole[]) => ({ error: { code: 'FORBIDDEN', message: `role ${role} may not do this (needs ${roles.join(' or ')})` } });
const ownerRefusal = (what: string) => ({
  error: {
    code: 'FORBIDDEN',
    message: `user:${EXAMPLE_AGENT_OWNER} owns agent "${EXAMPLE_AGENT}" and cannot ${what} (rule owner-may-not-approve: another approver must; serve --owner-may-approve ROLE lets owners with that role decide)`,
  },
});

// ---------------------------------------------------------------------------------------------
// Operations

export const healthz = route({
  method: 'GET',
  path: '/healthz',
  operationId: 'healthz',
  tag: 'operations',
  summary: 'Liveness',
  roles: null,
  response: { status: 200, description: 'Serving.', schema: HealthSchema },
  examples: { ok: { summary: 'Serving', status: 200, response: { status: 'ok' } } },
});

export const metrics = route({
  method: 'GET',
  path: '/metrics',
  operationId: 'metrics',
  tag: 'operations',
  summary: 'Prometheus metrics (text exposition format)',
  roles: null,
  response: { status: 200, description: 'Metrics.', contentType: 'text/plain' },
  examples: { ok: { summary: 'The metrics', status: 200 } },
});

export const openapi = route({
  method: 'GET',
  path: OPENAPI_PATH,
  operationId: 'openapi',
  tag: 'operations',
  summary: 'This description (OpenAPI 3.0.3), generated from the schemas the routes validate with',
  roles: null,
  response: { status: 200, description: 'The OpenAPI document.', contentType: 'application/json' },
  examples: { ok: { summary: 'The document', status: 200 } },
});

// ---------------------------------------------------------------------------------------------
// Users, agents, audit, policy

export const whoami = route({
  method: 'GET',
  path: '/v1/whoami',
  operationId: 'whoami',
  tag: 'users',
  summary: 'The user the token belongs to',
  roles: ANY_ROLE,
  response: { status: 200, description: 'The user.', schema: UserSchema },
  examples: {
    alice: { summary: 'An approver', as: 'alice', status: 200, response: { id: 'b3c1e2d4-5f6a-4b7c-8d9e-0f1a2b3c4d5e', name: 'alice', role: 'approver', createdAt: '2025-06-01T08:00:00.000Z', disabledAt: null } },
    noToken: { summary: 'No bearer token', as: null, status: 401, response: UNAUTHENTICATED },
  },
});

const CLAUDE = { id: EXAMPLE_AGENT_ID, name: EXAMPLE_AGENT, owner: EXAMPLE_AGENT_OWNER, createdAt: '2025-06-01T08:00:00.000Z', revokedAt: null };
const RITA = { id: 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b', name: 'rita', role: 'reviewer', createdAt: '2025-06-01T08:00:00.000Z', disabledAt: null } as const;

export const listAgents = route({
  method: 'GET',
  path: '/v1/agents',
  operationId: 'listAgents',
  tag: 'agents',
  summary: 'List agents',
  roles: READERS,
  response: { status: 200, description: 'Agents.', schema: AgentListSchema },
  examples: { all: { summary: 'Every agent', as: 'rita', status: 200, response: { items: [CLAUDE] } } },
});

export const createAgent = route({
  method: 'POST',
  path: '/v1/agents',
  operationId: 'createAgent',
  tag: 'agents',
  summary: 'Create an agent; its token and kubeconfig are shown once',
  description: 'The agent belongs to the caller unless `owner` names another user; its owner does not approve its requests.',
  roles: ADMIN,
  body: CreateAgentBodySchema,
  response: { status: 201, description: 'Created.', schema: CreatedAgentSchema },
  errors: { 400: 'The name is invalid, or `owner` is not an enabled user.', 409: 'The name is taken (names are never reused).' },
  examples: {
    created: {
      summary: 'A new agent, owned by its creator',
      body: { name: 'deploy-bot' },
      status: 201,
      response: {
        agent: { id: '7d0c4b8e-2f1a-4c3d-9e5b-6a7f8091a2b3', name: 'deploy-bot', owner: 'adam', createdAt: '2025-06-02T08:00:00.000Z', revokedAt: null },
        token: 'kba_...',
        kubeconfig: 'apiVersion: v1\nkind: Config\n...',
      },
    },
    forAnother: {
      summary: 'A new agent for the approver who will run it',
      body: { name: 'deploy-bot', owner: 'bob' },
      status: 201,
      response: {
        agent: { id: '7d0c4b8e-2f1a-4c3d-9e5b-6a7f8091a2b3', name: 'deploy-bot', owner: 'bob', createdAt: '2025-06-02T08:00:00.000Z', revokedAt: null },
        token: 'kba_...',
        kubeconfig: 'apiVersion: v1\nkind: Config\n...',
      },
    },
    unknownOwner: {
      summary: 'An owner who is not a user',
      body: { name: 'deploy-bot', owner: 'nobody' },
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'owner "nobody" is not a user (kube-bastion user list)', field: 'owner' } },
    },
    taken: {
      summary: 'A name already used',
      body: { name: 'claude' },
      status: 409,
      response: { error: { code: 'ALREADY_EXISTS', message: 'agent "claude" already exists' } },
    },
    notAdmin: { summary: 'An approver may not', as: 'alice', body: { name: 'x' }, status: 403, response: forbidden('approver', ADMIN) },
  },
});

export const getAgent = route({
  method: 'GET',
  path: '/v1/agents/{name}',
  operationId: 'getAgent',
  tag: 'agents',
  summary: 'One agent',
  roles: READERS,
  params: AgentNameParams,
  response: { status: 200, description: 'The agent.', schema: AgentSchema },
  errors: { 404: 'No such agent.' },
  examples: {
    claude: { summary: 'An agent', params: { name: 'claude' }, status: 200, response: CLAUDE },
    unknown: { summary: 'No such agent', params: { name: 'nobody' }, status: 404, response: { error: { code: 'NOT_FOUND', message: 'agent "nobody" not found' } } },
  },
});

export const revokeAgent = route({
  method: 'POST',
  path: '/v1/agents/{name}/revoke',
  operationId: 'revokeAgent',
  tag: 'agents',
  summary: 'Revoke an agent (idempotent); its token stops working',
  description: 'Its approvals are revoked (pending ones denied) and its sessions and held requests end at once, naming the reason. The body may be left out.',
  roles: ADMIN,
  params: AgentNameParams,
  body: z.strictObject({ reason: OptionalReasonSchema }).meta({ id: 'RevokeAgentRequest' }),
  bodyOptional: true,
  response: { status: 200, description: 'The revoked agent.', schema: AgentSchema },
  errors: { 404: 'No such agent.' },
  examples: {
    revoked: { summary: 'Revoked', params: { name: 'claude' }, body: { reason: 'token leaked in a CI log' }, status: 200, response: { ...CLAUDE, revokedAt: '2025-06-02T12:00:00.000Z' } },
  },
});

export const listUsers = route({
  method: 'GET',
  path: '/v1/users',
  operationId: 'listUsers',
  tag: 'users',
  summary: 'List users',
  roles: ADMIN,
  response: { status: 200, description: 'Users.', schema: UserListSchema },
});

export const disableUser = route({
  method: 'POST',
  path: '/v1/users/{name}/disable',
  operationId: 'disableUser',
  tag: 'users',
  summary: "Disable a user (idempotent); its token is refused (401) from the next request on",
  description: 'The last enabled admin cannot be disabled. Every disable is an audit event (`user.disabled`).',
  roles: ADMIN,
  params: UserNameParams,
  response: { status: 200, description: 'The disabled user.', schema: UserSchema },
  errors: { 400: 'The last enabled admin (INVALID_STATE).', 404: 'No such user.' },
  examples: {
    disabled: { summary: 'Disabled', params: { name: 'rita' }, status: 200, response: { ...RITA, disabledAt: '2025-06-02T12:00:00.000Z' } },
    lastAdmin: {
      summary: 'The last enabled admin',
      params: { name: 'adam' },
      status: 400,
      response: { error: { code: 'INVALID_STATE', message: 'user "adam" is the last enabled admin; create another admin first', field: 'name' } },
    },
    notAdmin: { summary: 'An approver may not', as: 'alice', params: { name: 'rita' }, status: 403, response: forbidden('approver', ADMIN) },
  },
});

export const rotateUserToken = route({
  method: 'POST',
  path: '/v1/users/{name}/rotate-token',
  operationId: 'rotateUserToken',
  tag: 'users',
  summary: "Replace a user's token: the new one is shown once, the old one is refused (401) at once",
  description: 'Admins rotate any enabled user\'s token; every user may rotate their own. Every rotation is an audit event (`user.token-rotated`).',
  roles: ANY_ROLE,
  params: UserNameParams,
  response: { status: 200, description: 'The user and the new token.', schema: RotatedTokenSchema },
  errors: { 400: 'The user is disabled (INVALID_STATE).', 403: "Another user's token, and the caller is not an admin.", 404: 'No such user.' },
  examples: {
    byAdmin: { summary: "An admin rotates a reviewer's token", as: 'adam', params: { name: 'rita' }, status: 200, response: { user: RITA, token: 'kbu_...' } },
    own: { summary: 'A reviewer rotates their own', as: 'rita', params: { name: 'rita' }, status: 200, response: { user: RITA, token: 'kbu_...' } },
    other: {
      summary: "An approver may not rotate another user's token",
      as: 'alice',
      params: { name: 'rita' },
      status: 403,
      response: { error: { code: 'FORBIDDEN', message: "only an admin may rotate another user's token (user:alice asked for rita's)" } },
    },
  },
});

export const createUser = route({
  method: 'POST',
  path: '/v1/users',
  operationId: 'createUser',
  tag: 'users',
  summary: 'Create a user; its token is shown once',
  roles: ADMIN,
  body: CreateUserBodySchema,
  response: { status: 201, description: 'Created.', schema: CreatedUserSchema },
  errors: { 409: 'The name is taken.' },
  examples: {
    created: {
      summary: 'A reviewer',
      body: { name: 'rhea', role: 'reviewer' },
      status: 201,
      response: { user: { id: 'c9d8e7f6-a5b4-4c3d-8e2f-1a0b9c8d7e6f', name: 'rhea', role: 'reviewer', createdAt: '2025-06-02T08:00:00.000Z', disabledAt: null }, token: 'kbu_...' },
    },
    badRole: {
      summary: 'No such role',
      body: { name: 'rhea', role: 'root' },
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'role must be one of approver, reviewer, admin', field: 'role' } },
    },
  },
});

export const queryAudit = route({
  method: 'GET',
  path: '/v1/audit',
  operationId: 'queryAudit',
  tag: 'audit',
  summary: 'Audit rows, oldest first',
  roles: READERS,
  query: AuditQuery,
  response: { status: 200, description: 'Rows.', schema: AuditRecordListSchema },
  examples: {
    none: { summary: 'No exports yet', query: { event: 'evidence.exported', limit: '50' }, status: 200, response: { items: [] } },
    badLimit: {
      summary: 'A limit that is not a number',
      query: { limit: 'lots' },
      status: 400,
      response: { error: { code: 'INVALID_QUERY', message: 'limit must be a whole number (at most 99999)', field: 'limit' } },
    },
  },
});

/** What audit verify finds in the example world, whose rows were written without the chain: newest approval first. */
/** What audit verify finds in the example world, whose rows were written straight into the tables. */
const unauditedSession = (id: string, endReason: string) => [
  {
    table: 'sessions' as const,
    id,
    field: 'row',
    stored: '"ended"',
    audited: null,
    message: `session ${id} is in the sessions table but no session.start audit row records it`,
  },
  {
    table: 'sessions' as const,
    id,
    field: 'endReason',
    stored: JSON.stringify(endReason),
    audited: null,
    message: `session ${id} ended (${endReason}) in the sessions table but no session.end audit row records its end`,
  },
];
const UNAUDITED_WORLD = [
  ...[APPROVED_FORWARD, PENDING_FORWARD, PENDING_REST, REVOKED_REST, DENIED_REST, APPROVED_STREAM, PENDING_EXEC].map((a) => ({
    table: 'approvals' as const,
    id: a.id,
    field: 'row',
    stored: JSON.stringify(a.state),
    audited: null,
    message: `approval ${a.id} (${a.state}) is in the approvals table but no audit row records it: it was written behind the bastion's back`,
  })),
  ...unauditedSession(FORWARD_SESSION.id, FORWARD_SESSION.endReason),
  ...unauditedSession(ENDED_SESSION.id, 'completed'),
];

export const verifyAudit = route({
  method: 'GET',
  path: '/v1/audit/verify',
  operationId: 'verifyAudit',
  tag: 'audit',
  summary: "Check the audit log: the chain against the signed checkpoints, the tables against the chain",
  description:
    "Walks the hash chain, checks it still holds every signed checkpoint of the data dir's audit-checkpoints.jsonl (a truncation, a wipe or a " +
    'rewrite is named with the checkpoint that covered it), and checks every approval (state, scope, expiresAt, agent, decider) and session ' +
    '(approval, end) in the tables against its audit rows. `ok` is false when anything was found; `findings` says what.',
  roles: READERS,
  response: { status: 200, description: 'The verdict.', schema: AuditTrustReportSchema },
  examples: {
    behindTheChain: {
      summary: 'Table rows no audit row records (the example world put them straight into the database)',
      status: 200,
      response: {
        ok: false,
        chain: { ok: true, rows: 0, head: { rows: 0, lastId: 0, headHash: '0'.repeat(64) } },
        checkpoints: { count: 0, latest: null, problems: [] },
        tables: { approvals: 7, sessions: 2, disagreements: UNAUDITED_WORLD },
        findings: UNAUDITED_WORLD.map((d) => d.message),
      },
    },
  },
});

export const getSigningKey = route({
  method: 'GET',
  path: '/v1/signing-key',
  operationId: 'getSigningKey',
  tag: 'audit',
  summary: "The bastion's public signing key and its fingerprint",
  description:
    'The Ed25519 key that signs evidence manifests and audit checkpoints. Anyone may read it (no token): pin it where evidence is checked ' +
    '(`kube-bastion verify DIR --fingerprint SHA256:...` or `--key FILE`), having compared the fingerprint with the serve banner or the docs of this bastion.',
  roles: null,
  response: { status: 200, description: 'The key.', schema: SigningKeyInfoSchema },
  examples: {
    key: { summary: "The bastion's key", as: null, status: 200, response: EXAMPLE_SIGNING_KEY },
  },
});

export const getPolicy = route({
  method: 'GET',
  path: '/v1/policy',
  operationId: 'getPolicy',
  tag: 'policy',
  summary: 'The policy in force and every version ever loaded',
  roles: READERS,
  response: { status: 200, description: 'Policy.', schema: PolicySchema },
  examples: {
    current: {
      summary: 'One version loaded',
      status: 200,
      response: {
        current: { hash: EXAMPLE_POLICY.hash, origin: EXAMPLE_POLICY.origin },
        versions: [{ ...EXAMPLE_POLICY, firstLoadedAt: '2025-06-01T08:00:00.000Z', lastLoadedAt: '2025-06-01T08:00:00.000Z', loadCount: 1 }],
      },
    },
  },
});

// ---------------------------------------------------------------------------------------------
// Approvals

/** The grant that made APPROVED_STREAM: its scope's fields, flat. */
const { kind: _streamKind, ...approvedStreamScope } = APPROVED_STREAM.scope;
const STREAM_GRANT = { agent: EXAMPLE_AGENT, ...approvedStreamScope, ttlSeconds: APPROVED_STREAM.ttlSeconds, reason: APPROVED_STREAM.reason };
const REST_GRANT = { agent: 'claude', verb: 'delete', resource: 'namespaces', name: 'demo', ttlSeconds: 3600, reason: 'tear down the demo' };
/** The grant that made APPROVED_FORWARD, and the same without its ports (refused). */
const { kind: _forwardKind, ...approvedForwardScope } = APPROVED_FORWARD.scope;
const FORWARD_GRANT = { agent: EXAMPLE_AGENT, ...approvedForwardScope, ttlSeconds: APPROVED_FORWARD.ttlSeconds, reason: APPROVED_FORWARD.reason };
const { ports: _ports, ...FORWARD_GRANT_WITHOUT_PORTS } = FORWARD_GRANT;

export const listApprovals = route({
  method: 'GET',
  path: '/v1/approvals',
  operationId: 'listApprovals',
  tag: 'approvals',
  summary: 'List approvals, newest first',
  description: 'Unknown query parameters are refused.',
  roles: READERS,
  query: ApprovalListQuery,
  response: { status: 200, description: 'Approvals.', schema: ApprovalListSchema },
  examples: {
    pending: { summary: "claude's pending requests", query: { state: 'pending', agent: 'claude' }, status: 200, response: { items: [PENDING_FORWARD, PENDING_REST, PENDING_EXEC] } },
    badState: {
      summary: 'An unknown state',
      query: { state: 'waiting' },
      status: 400,
      response: { error: { code: 'INVALID_QUERY', message: `state must be one of ${APPROVAL_STATES.join(', ')}`, field: 'state' } },
    },
  },
});

export const grantApproval = route({
  method: 'POST',
  path: '/v1/approvals',
  operationId: 'grantApproval',
  tag: 'approvals',
  summary: 'Grant a scope to an agent directly (approved at once)',
  description: 'The body is flat, with the fields of one scope kind. Every grant is an audit event.',
  roles: DECIDERS,
  body: GrantBodySchema,
  response: { status: 201, description: 'The approval.', schema: ApprovalSchema },
  examples: {
    stream: {
      summary: 'Grant exec (and attach) into one container, two commands, three sessions',
      body: STREAM_GRANT,
      status: 201,
      response: { ...APPROVED_STREAM, id: 'apr_m2ejhz2dho47ffqv6h7p', sessionsStarted: 0 },
    },
    rest: {
      summary: 'Grant one REST call',
      body: REST_GRANT,
      status: 201,
      response: {
        ...REVOKED_REST,
        id: 'apr_opbtisqmz4xgdjhfgvdg',
        state: 'approved',
        revokedAt: null,
        revokedBy: null,
        decisions: [REVOKED_REST.decisions[0]!],
      },
    },
    portforward: {
      summary: "Grant port-forward to the pod's port 8080",
      body: FORWARD_GRANT,
      status: 201,
      response: { ...APPROVED_FORWARD, id: 'apr_m2ejhz2dho47ffqv6h7p', sessionsStarted: 0 },
    },
    portforwardWithoutPorts: {
      summary: 'A port-forward grant names its ports',
      body: FORWARD_GRANT_WITHOUT_PORTS,
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'ports is required: a port-forward grant names the pod ports it may reach', field: 'ports' } },
    },
    badTtl: {
      summary: 'ttlSeconds as a string',
      body: { ...STREAM_GRANT, ttlSeconds: '10' },
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'ttlSeconds "10" must be a whole number of seconds from 1 to 86400', field: 'ttlSeconds' } },
    },
    mixed: {
      summary: 'Fields of both scope kinds',
      body: { ...STREAM_GRANT, verb: 'get' },
      status: 400,
      response: {
        error: {
          code: 'INVALID_FIELD',
          message:
            'verb is a REST scope field but the body also has stream scope field "pod": give either a stream scope (namespace, pod, verbs[, container, commands, ports, maxSessions]) or a REST scope (verb, resource[, namespace, name, maxUses])',
          field: 'verb',
        },
      },
    },
    unknownField: {
      summary: 'A field that does not exist',
      body: { ...REST_GRANT, until: 'tomorrow' },
      status: 400,
      response: {
        error: { code: 'UNKNOWN_FIELD', message: 'until is not a field here (fields: agent, verb, resource, namespace, name, maxUses, ttlSeconds, reason)', field: 'until' },
      },
    },
    reviewer: { summary: 'A reviewer may not', as: 'rita', body: REST_GRANT, status: 403, response: forbidden('reviewer', DECIDERS) },
    owner: { summary: "The agent's owner may not grant to it", as: 'bob', body: REST_GRANT, status: 403, response: ownerRefusal('grant to it') },
  },
});

export const getApproval = route({
  method: 'GET',
  path: '/v1/approvals/{id}',
  operationId: 'getApproval',
  tag: 'approvals',
  summary: 'One approval',
  roles: READERS,
  params: ApprovalIdParams,
  response: { status: 200, description: 'The approval.', schema: ApprovalSchema },
  errors: { 404: 'No such approval.' },
  examples: {
    pending: { summary: 'An exec held for approval', params: { id: PENDING_EXEC.id }, status: 200, response: PENDING_EXEC },
    approved: { summary: 'A direct stream grant', params: { id: APPROVED_STREAM.id }, status: 200, response: APPROVED_STREAM },
    denied: { summary: 'A held REST request, denied', params: { id: DENIED_REST.id }, status: 200, response: DENIED_REST },
    pendingRest: { summary: 'A held pod create: its body, redacted where secret, and its risk summary', params: { id: PENDING_REST.id }, status: 200, response: PENDING_REST },
    revoked: { summary: 'A REST grant, revoked', params: { id: REVOKED_REST.id }, status: 200, response: REVOKED_REST },
    unknown: {
      summary: 'No such approval',
      params: { id: 'apr_aaaaaaaaaaaaaaaaaaaa' },
      status: 404,
      response: { error: { code: 'NOT_FOUND', message: 'approval "apr_aaaaaaaaaaaaaaaaaaaa" not found' } },
    },
  },
});

export const getApprovalRecord = route({
  method: 'GET',
  path: '/v1/approvals/{id}/record',
  operationId: 'getApprovalRecord',
  tag: 'approvals',
  summary: "The approval's review record",
  description:
    'One document answering the five review questions: which agent acted; whether approval was needed and which rule (with the policy version and ' +
    "the rule's text) decided; who decided, when and why (every decision, append-only); the scope and whether everything stayed inside it " +
    "(every request of the agent against the same pod or object during the approval's window, with why each was inside or outside); and the " +
    'sessions with their recordings. `answers` says each in one sentence.',
  roles: READERS,
  params: ApprovalIdParams,
  response: { status: 200, description: 'The review record.', schema: ReviewRecordSchema },
  errors: { 404: 'No such approval.' },
  examples: {
    record: { summary: 'The record of a direct grant with one session', params: { id: APPROVED_STREAM.id }, status: 200 },
    unknown: {
      summary: 'No such approval',
      params: { id: 'apr_aaaaaaaaaaaaaaaaaaaa' },
      status: 404,
      response: { error: { code: 'NOT_FOUND', message: 'approval "apr_aaaaaaaaaaaaaaaaaaaa" not found' } },
    },
  },
});

export const approveApproval = route({
  method: 'POST',
  path: '/v1/approvals/{id}/approve',
  operationId: 'approveApproval',
  tag: 'approvals',
  summary: 'Approve a pending request',
  description:
    'Nobody approves a request they made (403). The body may be left out. A held REST request is approved for exactly that request (method, path, query, body hash, media type, content encoding), once; `uses` and `scope: "shape"` widen it, and the approval records the scope approved.',
  roles: DECIDERS,
  params: ApprovalIdParams,
  body: ApproveBodySchema,
  bodyOptional: true,
  response: { status: 200, description: 'The approved approval.', schema: ApprovalSchema },
  errors: { 400: 'The body is invalid, or the approval is not pending (INVALID_STATE, field `state`).', 404: 'No such approval.' },
  examples: {
    approved: {
      summary: 'Approved for 20 minutes',
      params: { id: PENDING_EXEC.id },
      body: { ttlSeconds: 1200, reason: 'ok for INC-4211' },
      status: 200,
      response: {
        ...PENDING_EXEC,
        state: 'approved',
        decidedBy: 'user:alice',
        reason: 'ok for INC-4211',
        ttlSeconds: 1200,
        decidedAt: '2025-06-02T09:15:00.000Z',
        expiresAt: '2025-06-02T09:35:00.000Z',
        decisions: [{ kind: 'approved', by: 'user:alice', at: '2025-06-02T09:15:00.000Z', reason: 'ok for INC-4211', ttlSeconds: 1200, expiresAt: '2025-06-02T09:35:00.000Z' }],
      },
    },
    noBody: {
      summary: 'Approved with the validity the request carried',
      params: { id: PENDING_EXEC.id },
      status: 200,
      response: {
        ...PENDING_EXEC,
        state: 'approved',
        decidedBy: 'user:alice',
        decidedAt: '2025-06-02T09:15:00.000Z',
        expiresAt: '2025-06-02T09:30:00.000Z',
        decisions: [{ kind: 'approved', by: 'user:alice', at: '2025-06-02T09:15:00.000Z', reason: null, ttlSeconds: 900, expiresAt: '2025-06-02T09:30:00.000Z' }],
      },
    },
    owner: { summary: "The agent's owner may not approve its requests", as: 'bob', params: { id: PENDING_EXEC.id }, status: 403, response: ownerRefusal('approve its requests') },
    twice: {
      summary: 'A held REST request, approved for two identical requests',
      params: { id: PENDING_REST.id },
      body: { uses: 2, reason: 'debug pod for INC-4211' },
      status: 200,
      response: {
        ...PENDING_REST,
        scope: { ...PENDING_REST.scope, maxUses: 2 },
        state: 'approved',
        decidedBy: 'user:alice',
        reason: 'debug pod for INC-4211',
        decidedAt: '2025-06-02T09:41:00.000Z',
        expiresAt: '2025-06-02T09:56:00.000Z',
        decisions: [{ kind: 'approved', by: 'user:alice', at: '2025-06-02T09:41:00.000Z', reason: 'debug pod for INC-4211', ttlSeconds: 900, expiresAt: '2025-06-02T09:56:00.000Z' }],
      },
    },
    shape: {
      summary: 'Widened to any pod create in demo (any body), until expiry',
      params: { id: PENDING_REST.id },
      body: { scope: 'shape', ttlSeconds: 600, reason: 'pod churn during the migration' },
      status: 200,
      response: {
        ...PENDING_REST,
        scope: { kind: 'rest', verb: 'create', resource: 'pods', namespace: 'demo', name: '' },
        state: 'approved',
        decidedBy: 'user:alice',
        reason: 'pod churn during the migration',
        ttlSeconds: 600,
        decidedAt: '2025-06-02T09:41:00.000Z',
        expiresAt: '2025-06-02T09:51:00.000Z',
        decisions: [{ kind: 'approved', by: 'user:alice', at: '2025-06-02T09:41:00.000Z', reason: 'pod churn during the migration', ttlSeconds: 600, expiresAt: '2025-06-02T09:51:00.000Z' }],
      },
    },
    ports: {
      summary: 'A held port-forward, approved for the pod ports 8080 and 5432',
      params: { id: PENDING_FORWARD.id },
      body: { ports: [8080, 5432], reason: 'admin page and the database for INC-4212' },
      status: 200,
      response: {
        ...PENDING_FORWARD,
        scope: { ...PENDING_FORWARD.scope, ports: [5432, 8080] },
        state: 'approved',
        decidedBy: 'user:alice',
        reason: 'admin page and the database for INC-4212',
        decidedAt: '2025-06-02T09:51:00.000Z',
        expiresAt: '2025-06-02T10:06:00.000Z',
        decisions: [{ kind: 'approved', by: 'user:alice', at: '2025-06-02T09:51:00.000Z', reason: 'admin page and the database for INC-4212', ttlSeconds: 900, expiresAt: '2025-06-02T10:06:00.000Z' }],
      },
    },
    noPorts: {
      summary: 'A port-forward that named no ports is approved with them',
      params: { id: PENDING_FORWARD.id },
      body: { reason: 'ok' },
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'ports is required: name the pod ports this port-forward may reach (--ports)', field: 'ports' } },
    },
    portsOnExec: {
      summary: 'ports are for port-forward approvals',
      params: { id: PENDING_EXEC.id },
      body: { ports: [8080] },
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'ports names the pod ports a port-forward may reach; this approval is for exec', field: 'ports' } },
    },
    usesOnExec: {
      summary: 'uses and scope are for REST approvals',
      params: { id: PENDING_EXEC.id },
      body: { uses: 3 },
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'uses widens REST approvals only; the scope of an exec, attach or portforward approval is changed by a new grant', field: 'uses' } },
    },
    notPending: {
      summary: 'Approving what is already approved',
      params: { id: APPROVED_STREAM.id },
      status: 400,
      response: { error: { code: 'INVALID_STATE', message: `approval ${APPROVED_STREAM.id} is approved; only a pending approval can be approved`, field: 'state' } },
    },
  },
});

export const denyApproval = route({
  method: 'POST',
  path: '/v1/approvals/{id}/deny',
  operationId: 'denyApproval',
  tag: 'approvals',
  summary: 'Deny a pending request',
  roles: DECIDERS,
  params: ApprovalIdParams,
  body: DenyBodySchema,
  bodyOptional: true,
  response: { status: 200, description: 'The denied approval.', schema: ApprovalSchema },
  errors: { 400: 'No reason, or the approval is not pending (INVALID_STATE, field `state`).', 404: 'No such approval.' },
  examples: {
    denied: {
      summary: 'Denied',
      params: { id: PENDING_EXEC.id },
      body: { reason: 'not during the freeze' },
      status: 200,
      response: {
        ...PENDING_EXEC,
        state: 'denied',
        decidedBy: 'user:alice',
        reason: 'not during the freeze',
        decidedAt: '2025-06-02T09:15:00.000Z',
        expiresAt: null,
        decisions: [{ kind: 'denied', by: 'user:alice', at: '2025-06-02T09:15:00.000Z', reason: 'not during the freeze', ttlSeconds: null, expiresAt: null }],
      },
    },
    noReason: {
      summary: 'A denial needs a reason',
      params: { id: PENDING_EXEC.id },
      body: {},
      status: 400,
      response: { error: { code: 'INVALID_FIELD', message: 'reason is required: say why', field: 'reason' } },
    },
  },
});

export const revokeApproval = route({
  method: 'POST',
  path: '/v1/approvals/{id}/revoke',
  operationId: 'revokeApproval',
  tag: 'approvals',
  summary: 'Revoke an approved approval; sessions under it are cut',
  description: "The body may be left out. The revocation is appended to `decisions`; the approver's reason stays.",
  roles: DECIDERS,
  params: ApprovalIdParams,
  body: RevokeBodySchema,
  bodyOptional: true,
  response: { status: 200, description: 'The revoked approval.', schema: ApprovalSchema },
  errors: { 400: 'The body is invalid, or the approval is not approved (INVALID_STATE, field `state`).', 404: 'No such approval.' },
  examples: {
    revoked: {
      summary: 'Revoked',
      params: { id: APPROVED_STREAM.id },
      body: { reason: 'incident over' },
      status: 200,
      response: {
        ...APPROVED_STREAM,
        state: 'revoked',
        revokedAt: '2025-06-02T09:25:00.000Z',
        revokedBy: 'user:alice',
        decisions: [
          ...APPROVED_STREAM.decisions,
          { kind: 'revoked', by: 'user:alice', at: '2025-06-02T09:25:00.000Z', reason: 'incident over', ttlSeconds: null, expiresAt: null },
        ],
      },
    },
  },
});

// ---------------------------------------------------------------------------------------------
// Sessions and evidence

export const listSessions = route({
  method: 'GET',
  path: '/v1/sessions',
  operationId: 'listSessions',
  tag: 'sessions',
  summary: 'List sessions, newest first',
  description: 'Unknown query parameters are refused.',
  roles: READERS,
  query: SessionListQuery,
  response: { status: 200, description: 'Sessions.', schema: SessionListSchema },
  examples: {
    ofApproval: { summary: "An approval's sessions", query: { approval: APPROVED_STREAM.id }, status: 200, response: { items: [ENDED_SESSION] } },
    unknownParameter: {
      summary: 'An unknown parameter',
      query: { colour: 'blue' },
      status: 400,
      response: { error: { code: 'INVALID_QUERY', message: 'colour is not a query parameter here (allowed: approval, agent, state, since, until)', field: 'colour' } },
    },
  },
});

export const getSession = route({
  method: 'GET',
  path: '/v1/sessions/{id}',
  operationId: 'getSession',
  tag: 'sessions',
  summary: 'One session, with every hash',
  roles: READERS,
  params: SessionIdParams,
  query: z.strictObject({}),
  response: { status: 200, description: 'The session (a port-forward with its forwarded connections).', schema: SessionDetailSchema },
  errors: { 404: 'No such session.' },
  examples: {
    ended: { summary: 'An ended exec session with its recording', params: { id: ENDED_SESSION.id }, status: 200, response: ENDED_SESSION },
    portforward: {
      summary: 'A port-forward session: one HTTP connection to 8080, one to 5432 refused (outside the approved ports)',
      params: { id: FORWARD_SESSION.id },
      status: 200,
      response: FORWARD_SESSION,
    },
    unknown: {
      summary: 'No such session',
      params: { id: 'ses_aaaaaaaaaaaaaaaaaaaa' },
      status: 404,
      response: { error: { code: 'NOT_FOUND', message: 'session "ses_aaaaaaaaaaaaaaaaaaaa" not found' } },
    },
  },
});

export const getSessionRecording = route({
  method: 'GET',
  path: '/v1/sessions/{id}/recording',
  operationId: 'getSessionRecording',
  tag: 'sessions',
  summary: 'The asciicast recording (streamed)',
  description:
    'As recorded (byte for byte, its sha256 is `sha256.cast`), or converted to the asked asciicast version. ' +
    'An open session answers what has been recorded so far. Every download is an audit event (`session.recording.accessed`). ' +
    'The `X-Asciicast-Version` header says which version the body is.',
  roles: READERS,
  params: SessionIdParams,
  query: FormatQuery,
  response: { status: 200, description: 'The cast (Content-Disposition: attachment; filename="<id>.cast").', contentType: 'application/x-asciicast' },
  errors: { 404: 'No such session, or it has no recording on the bastion.', 409: 'The recording is not a readable asciicast, so it cannot be converted (download it as recorded).' },
  examples: {
    v3: { summary: 'Converted to asciicast v3', params: { id: ENDED_SESSION.id }, query: { format: 'v3' }, status: 200 },
    badFormat: {
      summary: 'An unknown format',
      params: { id: ENDED_SESSION.id },
      query: { format: 'mp4' },
      status: 400,
      response: { error: { code: 'INVALID_QUERY', message: 'format must be v2 or v3 (asciicast version)', field: 'format' } },
    },
  },
});

export const getSessionRaw = route({
  method: 'GET',
  path: '/v1/sessions/{id}/raw',
  operationId: 'getSessionRaw',
  tag: 'sessions',
  summary: 'The raw sidecar: the exact bytes of every channel (streamed)',
  description: 'Its sha256 is `sha256.raw`. Every download is an audit event (`session.recording.accessed`).',
  roles: READERS,
  params: SessionIdParams,
  query: z.strictObject({}),
  response: { status: 200, description: 'The sidecar (Content-Disposition: attachment; filename="<id>.raw").', contentType: 'application/octet-stream', binary: true },
  errors: { 404: 'No such session, or it has no sidecar on the bastion.' },
  examples: { raw: { summary: 'The sidecar', params: { id: ENDED_SESSION.id }, status: 200 } },
});

export const getApprovalEvidence = route({
  method: 'GET',
  path: '/v1/approvals/{id}/evidence',
  operationId: 'getApprovalEvidence',
  tag: 'evidence',
  summary: "The approval's evidence archive",
  description: EVIDENCE_LAYOUT,
  roles: READERS,
  params: ApprovalIdParams,
  query: FormatQuery,
  response: TAR,
  errors: { 404: 'No such approval.' },
  examples: { archive: { summary: 'The archive', params: { id: APPROVED_STREAM.id }, status: 200 } },
});

export const getEvidence = route({
  method: 'GET',
  path: '/v1/evidence',
  operationId: 'getEvidence',
  tag: 'evidence',
  summary: 'The evidence archive for an approval, a session or a time range',
  description:
    'Exactly one of `approval`, `session`, `since`. A session export holds its approval\'s record and audit rows; ' +
    'a time range holds every session started, approval created and audit row written in it, with the approval records under `approvals/<id>.json`. ' +
    EVIDENCE_LAYOUT,
  roles: READERS,
  query: EvidenceQuery,
  response: TAR,
  errors: { 404: 'No such approval or session.' },
  examples: {
    session: { summary: "One session's evidence", query: { session: ENDED_SESSION.id }, status: 200 },
    nothing: {
      summary: 'No subject',
      status: 400,
      response: { error: { code: 'INVALID_QUERY', message: 'approval is one of "approval", "session" or "since": give exactly one', field: 'approval' } },
    },
  },
});

/** Every route of the control API (the web UI's static files are pages, not operations). */
export const ROUTES = [
  healthz,
  metrics,
  openapi,
  whoami,
  listAgents,
  createAgent,
  getAgent,
  revokeAgent,
  listUsers,
  createUser,
  disableUser,
  rotateUserToken,
  queryAudit,
  verifyAudit,
  getSigningKey,
  getPolicy,
  listApprovals,
  grantApproval,
  getApproval,
  getApprovalRecord,
  approveApproval,
  denyApproval,
  revokeApproval,
  listSessions,
  getSession,
  getSessionRecording,
  getSessionRaw,
  getApprovalEvidence,
  getEvidence,
] as const;

// Response (and small request) schemas of the control API for the records the store owns. The
// store's TypeScript interfaces stay their declaration; each schema here is checked at compile
// time to accept every value of that interface (`Fits`), and the API tests parse real answers
// with them, so the documented shape cannot drift from what is sent.
import { z } from 'zod';
import type { SessionView } from '../evidence/recordings.js';
import { ApprovalSchema } from '../model/approval-schema.js';
import type { ForwardedConnection } from '../model/forward.js';
import { ForwardedConnectionSchema } from '../model/review-record-schema.js';
import {
  AUDIT_DECISIONS,
  CAST_FORMATS,
  SESSION_END_REASONS,
  SESSION_STATES,
  STREAM_OPERATIONS,
  TRANSPORTS,
  USER_ROLES,
} from '../model/vocabulary.js';
import type { Status } from '../protocol/status.js';
import type { Agent, AuditRecord, AuditVerifyResult, PolicyVersion, User } from '../store/types.js';
import type { AuditTrustReport } from '../evidence/audit-trust.js';
import { CHECKPOINT_FORMAT, type Checkpoint } from '../evidence/checkpoints.js';

/** Compile-time: every T is a valid input of schema S. */
type Fits<T, S extends z.ZodType> = [T] extends [z.input<S>] ? true : never;
const fits = <T, S extends z.ZodType>(_: Fits<T, S>): void => undefined;

const IsoTime = z.iso.datetime();
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

export const ErrorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.string().describe('Stable code to branch on (see docs/api.md): INVALID_FIELD, UNKNOWN_FIELD, INVALID_QUERY, UNAUTHENTICATED, NOT_FOUND, ...'),
      message: z.string().describe('For people; do not parse.'),
      field: z.string().optional().describe('The body field or query parameter at fault, e.g. `ttlSeconds`, `commands[0][1]`.'),
    }),
  })
  .meta({ id: 'Error', description: 'Every error answer.' });
export type ErrorBody = z.infer<typeof ErrorSchema>;

/** `{"items": [...]}`, the shape of every list. */
export function listOf<S extends z.ZodType>(item: S, id: string) {
  return z.strictObject({ items: z.array(item) }).meta({ id });
}

export const ApprovalListSchema = listOf(ApprovalSchema, 'ApprovalList');

export const UserSchema = z
  .strictObject({ id: z.string(), name: z.string(), role: z.enum(USER_ROLES), createdAt: IsoTime, disabledAt: IsoTime.nullable() })
  .meta({ id: 'User' });
fits<User, typeof UserSchema>(true);

export const AgentSchema = z
  .strictObject({
    id: z.string().describe('Stable opaque id (UUID).'),
    name: z.string(),
    owner: z.string().nullable().describe('The user the agent belongs to: that user does not approve its requests (serve --owner-may-approve).'),
    createdAt: IsoTime,
    revokedAt: IsoTime.nullable().describe('When the agent was revoked; null while active.'),
  })
  .meta({ id: 'Agent' });
fits<Agent, typeof AgentSchema>(true);

const NameBody = z.string({ error: (iss) => (iss.input === undefined ? 'is required' : 'must be a non-empty string') }).regex(/\S/, { error: 'must be a non-empty string' });

export const CreateAgentBodySchema = z
  .strictObject({
    name: NameBody.describe('A DNS label, never reused.'),
    owner: NameBody.optional().describe('The user the agent belongs to (default: the caller). Only admins name another user.'),
  })
  .meta({ id: 'CreateAgentRequest' });
export const CreatedAgentSchema = z
  .strictObject({ agent: AgentSchema, token: z.string().describe('Shown once.'), kubeconfig: z.string() })
  .meta({ id: 'CreatedAgent' });

export const CreateUserBodySchema = z
  .strictObject({ name: NameBody, role: z.enum(USER_ROLES, { error: `must be one of ${USER_ROLES.join(', ')}` }) })
  .meta({ id: 'CreateUserRequest' });
export const CreatedUserSchema = z.strictObject({ user: UserSchema, token: z.string().describe('Shown once.') }).meta({ id: 'CreatedUser' });
export const RotatedTokenSchema = z
  .strictObject({ user: UserSchema, token: z.string().describe('The new token, shown once; the old one no longer works.') })
  .meta({ id: 'RotatedToken' });

const nullableString = z.string().nullable();
export const AuditRecordSchema = z
  .strictObject({
    id: z.int(),
    chainVersion: z.int(),
    time: IsoTime,
    event: z.string().describe('`request`, `session.start`, `approval.granted`, `approval.approved`, ...'),
    agentId: nullableString,
    agentName: nullableString,
    actor: nullableString,
    source: nullableString,
    method: nullableString,
    path: nullableString,
    verb: nullableString,
    apiGroup: nullableString,
    resource: nullableString,
    subresource: nullableString,
    namespace: nullableString,
    name: nullableString,
    stream: nullableString,
    decision: z.enum(AUDIT_DECISIONS).nullable(),
    rule: nullableString,
    policyHash: nullableString,
    approvalId: nullableString,
    sessionId: nullableString,
    statusCode: z.int().nullable(),
    bytesIn: z.int().nullable(),
    bytesOut: z.int().nullable(),
    durationMs: z.int().nullable(),
    untrustedClientHints: nullableString.describe('Canonical JSON text.'),
    details: nullableString.describe('Canonical JSON text.'),
    prevHash: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditRecord', description: 'One row of the hash-chained audit log.' });
fits<AuditRecord, typeof AuditRecordSchema>(true);

const AuditAnchorSchema = z.strictObject({ lastId: z.int(), headHash: Sha256, label: z.string().optional() });

export const AuditVerifyResultSchema = z
  .union([
    z.strictObject({ ok: z.literal(true), rows: z.int(), head: z.strictObject({ rows: z.int(), lastId: z.int(), headHash: z.string() }) }),
    z.strictObject({
      ok: z.literal(false),
      rowId: z.int(),
      reason: z.enum(['hash-mismatch', 'prev-mismatch', 'gap', 'malformed', 'truncated', 'wiped', 'anchor-mismatch']),
      message: z.string(),
      rowsVerified: z.int(),
      anchor: AuditAnchorSchema.optional().describe('For truncated, wiped and anchor-mismatch: the checkpoint that found it.'),
    }),
  ])
  .meta({ id: 'AuditVerifyResult', description: '`ok: true` with the row count and head, or `ok: false` with the first bad row.' });
fits<AuditVerifyResult, typeof AuditVerifyResultSchema>(true);

export const CheckpointSchema = z
  .strictObject({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.literal(1),
    seq: z.int().describe('1, 2, ... in the checkpoints file.'),
    time: IsoTime,
    reason: z.enum(['start', 'stop', 'interval', 'approval', 'session-end', 'cli']),
    rows: z.int(),
    lastId: z.int(),
    headHash: Sha256,
    keyFingerprint: z.string().describe('The signing key, `SHA256:...`.'),
  })
  .meta({ id: 'Checkpoint', description: "A signed head of the audit chain, kept outside the database (the data dir's audit-checkpoints.jsonl)." });
fits<Checkpoint, typeof CheckpointSchema>(true);

const TableDisagreementSchema = z.strictObject({
  table: z.enum(['approvals', 'sessions']),
  id: z.string(),
  field: z.string().describe('The column, or `row` when the row is missing on one side.'),
  stored: z.string().nullable().describe("The table's value as JSON text; null: no table row."),
  audited: z.string().nullable().describe('What the audit rows say, as JSON text; null: no audit row.'),
  message: z.string(),
});

export const AuditTrustReportSchema = z
  .strictObject({
    ok: z.boolean().describe('The chain is intact, still holds every signed checkpoint, and the approvals and sessions tables agree with it.'),
    chain: AuditVerifyResultSchema,
    checkpoints: z.strictObject({
      count: z.int().describe('Checkpoints whose signature verified.'),
      latest: CheckpointSchema.nullable(),
      problems: z.array(z.string()).describe('Lines not signed by the bastion, or that there is no checkpoint at all.'),
    }),
    tables: z.strictObject({ approvals: z.int(), sessions: z.int(), disagreements: z.array(TableDisagreementSchema) }),
    findings: z.array(z.string()).describe('One sentence per thing found (truncation, wipe, rewrite, a table row that disagrees); empty when ok.'),
  })
  .meta({ id: 'AuditTrustReport', description: "`audit verify`'s verdict: the chain against the signed checkpoints, and the tables against the chain." });
fits<AuditTrustReport, typeof AuditTrustReportSchema>(true);

export const SigningKeyInfoSchema = z
  .strictObject({
    algorithm: z.literal('Ed25519'),
    keyId: z.string().describe('First 16 hex characters of sha256 over the SPKI DER (what manifests name).'),
    fingerprint: z.string().describe('`SHA256:` and the unpadded base64 of sha256 over the SPKI DER: what `kube-bastion verify --fingerprint` pins.'),
    publicKeyPem: z.string().describe('SPKI PEM: save it and pass it to `kube-bastion verify --key`.'),
  })
  .meta({ id: 'SigningKey', description: "The bastion's Ed25519 public key: it signs evidence manifests and audit checkpoints." });

export const PolicyVersionSchema = z
  .strictObject({
    hash: z.string().describe('sha256 (hex) of the policy file.'),
    source: z.string().describe('The policy text.'),
    origin: z.string().describe('A file path, or `builtin:default`.'),
    firstLoadedAt: IsoTime,
    lastLoadedAt: IsoTime,
    loadCount: z.int(),
  })
  .meta({ id: 'PolicyVersion' });
fits<PolicyVersion, typeof PolicyVersionSchema>(true);

export const PolicySchema = z
  .strictObject({ current: z.strictObject({ hash: z.string(), origin: z.string() }), versions: z.array(PolicyVersionSchema) })
  .meta({ id: 'Policy', description: 'The policy in force and every version ever loaded, most recent first.' });

const optionalString = z.string().optional();
const StatusSchema = z
  .object({
    kind: z.literal('Status').optional(),
    apiVersion: z.literal('v1').optional(),
    metadata: z.record(z.string(), z.unknown()),
    status: z.enum(['Success', 'Failure']),
    message: optionalString,
    reason: optionalString,
    details: z
      .object({
        name: optionalString,
        group: optionalString,
        kind: optionalString,
        uid: optionalString,
        causes: z.array(z.object({ reason: optionalString, message: optionalString, field: optionalString })).optional(),
        retryAfterSeconds: z.int().optional(),
      })
      .optional(),
    code: z.int().optional(),
  })
  .describe('A metav1.Status.');
fits<Status, typeof StatusSchema>(true);

const nullableSha = Sha256.nullable();
export const SessionHashesSchema = z
  .strictObject({
    cast: nullableSha.describe('The asciicast file as recorded.'),
    raw: nullableSha.describe('The raw sidecar (exact bytes of every channel).'),
    stdin: nullableSha.describe('The bytes the agent sent.'),
    stdout: nullableSha,
    stderr: nullableSha,
  })
  .meta({ id: 'SessionHashes', description: "Every hash of a session (sha256, hex); null: not recorded (yet)." });

export const SessionSchema = z
  .strictObject({
    id: z.string().describe('`ses_` + 20 base32 characters.'),
    approvalId: z.string().nullable().describe('null when a policy rule allowed the session without an approval.'),
    agent: z.string(),
    agentId: z.string(),
    state: z.enum(SESSION_STATES),
    operation: z.enum(STREAM_OPERATIONS).nullable(),
    transport: z.enum(TRANSPORTS),
    protocol: z.string().describe('The agent-side subprotocol, e.g. `v5.channel.k8s.io`.'),
    upstreamProtocol: z.string().nullable(),
    namespace: z.string(),
    pod: z.string(),
    container: z.string(),
    command: z.array(z.string()).describe('exec argv ([] for attach).'),
    tty: z.boolean(),
    client: z.string().nullable().describe("The client's address and port (`ip:port`); null for sessions recorded before it was kept."),
    startedAt: IsoTime,
    endedAt: IsoTime.nullable(),
    endReason: z.enum(SESSION_END_REASONS).nullable(),
    exitCode: z.int().nullable(),
    status: StatusSchema.nullable().describe('The final metav1.Status sent to the agent.'),
    bytesIn: z.int().nullable(),
    bytesOut: z.int().nullable(),
    castPath: z.string().nullable(),
    castSha256: nullableSha,
    rawPath: z.string().nullable(),
    rawSha256: nullableSha,
    channelSha256: z.record(z.string(), z.string()).nullable().describe("sha256 of each channel's exact bytes, by channel name."),
    files: z
      .array(z.strictObject({ name: z.string(), size: z.int().min(0), sha256: Sha256 }))
      .nullable()
      .describe("Regular files carried by the session's tar stream (kubectl cp), when there was one."),
    sha256: SessionHashesSchema,
  })
  .meta({ id: 'Session', description: 'One exec/attach/portforward session as the store has it, plus `sha256` with every hash.' });
fits<SessionView, typeof SessionSchema>(true);

/** GET /v1/sessions/{id}: the session, and a port-forward's forwarded connections. */
export const SessionDetailSchema = SessionSchema.extend({
  connections: z
    .array(ForwardedConnectionSchema)
    .optional()
    .describe('portforward: every forwarded connection of the session in `seq` order (port, times, outcome, bytes and SHA-256 each way, raw sidecar); absent for exec and attach.'),
}).meta({ id: 'SessionDetail', description: 'One session with every hash; a port-forward session with its forwarded connections.' });
fits<SessionView & { connections?: ForwardedConnection[] }, typeof SessionDetailSchema>(true);

export const SessionListSchema = listOf(SessionSchema, 'SessionList');
export const AgentListSchema = listOf(AgentSchema, 'AgentList');
export const UserListSchema = listOf(UserSchema, 'UserList');
export const AuditRecordListSchema = listOf(AuditRecordSchema, 'AuditRecordList');

export const HealthSchema = z.strictObject({ status: z.literal('ok') }).meta({ id: 'Health' });

/** ?format=v2|v3 */
export const CastFormatParam = z.enum(CAST_FORMATS, { error: 'must be v2 or v3 (asciicast version)' });

// The answers as clients see them (the CLI and, through JSDoc, web/app.js).
export type ApiUser = z.infer<typeof UserSchema>;
export type ApiSession = z.infer<typeof SessionSchema>;
export type ApiSessionDetail = z.infer<typeof SessionDetailSchema>;
export type ApprovalList = z.infer<typeof ApprovalListSchema>;
export type SessionList = z.infer<typeof SessionListSchema>;

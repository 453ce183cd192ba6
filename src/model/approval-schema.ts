// The approval contract as zod schemas, declared once: the scopes, the Approval record, and the
// bodies of the grant and the decisions. The approval service validates its input with them, the
// control API validates requests with them and generates its OpenAPI document from them, the CLI
// and the web UI use the types inferred from them.
//
// Messages are fragments read after the field's name (see validation.ts): `is required`, `"Demo" is
// invalid: ...`. Component ids (`.meta({ id })`) name the schemas in the OpenAPI document.
import { z } from 'zod';
import type { GrantInput } from './approval.js';
import { fragment, show } from './validation.js';
import { APPROVAL_STATES, DECISION_KINDS, RESOURCE_VERBS, REST_APPROVAL_WIDTHS, RISK_LEVELS, STREAM_OPERATIONS, type StreamOperation } from './vocabulary.js';

/** Longest validity an approver may give (grant, approve). */
export const MAX_TTL_SECONDS = 86_400;
export const MAX_REASON_LENGTH = 2000;
export const MAX_COMMANDS = 64;
export const MAX_ARGV_LENGTH = 256;
export const MAX_ARG_LENGTH = 4096;
/** Longest canonical path or query a REST approval binds (kube-apiserver refuses longer URLs anyway). */
export const MAX_REQUEST_TARGET_LENGTH = 8192;

/** RFC 1123 label: namespaces, containers. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 1123 subdomain: pod names. */
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
/** RFC 1035 label: resource plurals and subresources. */
const DNS1035_LABEL = /^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Object names as the request parser accepts them (`:` for RBAC names, `@` for some CRDs). */
const OBJECT_NAME = /^[a-z0-9](?:[a-z0-9.:@-]{0,317}[a-z0-9])?$/;
const OR_EMPTY = (re: RegExp): RegExp => new RegExp(`^$|${re.source}`);

const LABEL_TEXT = "a DNS label: lower-case letters, digits and '-', at most 63 characters";
const SUBDOMAIN_TEXT = "a DNS subdomain: lower-case letters, digits, '-' and '.', at most 253 characters";
const RESOURCE_TEXT = 'use PLURAL[.GROUP][/SUBRESOURCE] in lower case, e.g. "pods", "deployments.apps" or "pods/ephemeralcontainers"';

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

function dnsName(re: RegExp, what: string) {
  return z
    .string({ error: (iss) => (iss.input === undefined ? `is required (${what})` : `must be a string (${what})`) })
    .min(1, { error: `is required (${what})` })
    .regex(re, { error: (iss) => `${show(iss.input)} is invalid: it must be ${what}` });
}

// ---------------------------------------------------------------------------------------------
// Fields

const Namespace = dnsName(DNS_LABEL, LABEL_TEXT).describe('A DNS label.');
const PodName = dnsName(DNS_SUBDOMAIN, SUBDOMAIN_TEXT).describe('A DNS subdomain.');
const ContainerName = dnsName(DNS_LABEL, LABEL_TEXT).describe('A DNS label (the resolved container name).');

const VERBS_TEXT = `must be a non-empty list of ${STREAM_OPERATIONS.join(', ')}`;
const StreamVerbs = z
  .array(z.enum(STREAM_OPERATIONS, { error: (iss) => `${show(iss.input)} is not one of ${STREAM_OPERATIONS.join(', ')}` }), { error: VERBS_TEXT })
  .min(1, { error: VERBS_TEXT });

const PORTS_TEXT = 'must be a non-empty list of distinct TCP ports (1-65535)';
/** The pod ports a port-forward may reach. */
const ForwardPorts = z
  .array(z.number({ error: PORTS_TEXT }).int({ error: PORTS_TEXT }).min(1, { error: PORTS_TEXT }).max(65535, { error: PORTS_TEXT }), { error: PORTS_TEXT })
  .min(1, { error: PORTS_TEXT })
  .max(64, { error: 'names more than 64 ports' })
  .refine((ports) => new Set(ports).size === ports.length, { error: 'names a port twice' })
  .describe('portforward: the pod ports a forwarded connection may reach; a connection to any other port is refused on its error stream.');

const ARGV_TEXT = 'must be a non-empty argv list, e.g. ["ls", "-l"]';
const Argv = z
  .array(z.string({ error: 'must be a string' }).max(MAX_ARG_LENGTH, { error: `is longer than ${MAX_ARG_LENGTH} characters` }), { error: ARGV_TEXT })
  .min(1, { error: ARGV_TEXT })
  .max(MAX_ARGV_LENGTH, { error: `has more than ${MAX_ARGV_LENGTH} arguments` })
  .refine((argv) => argv[0] !== '', { path: [0], error: '(the program) must not be empty' });

const COMMANDS_TEXT = 'must be a non-empty list of argv lists, e.g. [["ls", "-l"]] (leave it out to allow any command)';
const Commands = z
  .array(Argv, { error: COMMANDS_TEXT })
  .min(1, { error: COMMANDS_TEXT })
  .max(MAX_COMMANDS, { error: `has more than ${MAX_COMMANDS} entries` })
  .describe('Allow-list of exact exec argv; absent: any command.');

const maxSessionsError = (iss: { input?: unknown }): string => `${show(iss.input)} must be a positive integer (leave it out for no limit)`;
const MaxSessions = z
  .int({ error: maxSessionsError })
  .min(1, { error: maxSessionsError })
  .describe('Sessions allowed under the approval; absent: unlimited until expiry.');

const maxUsesError = (iss: { input?: unknown }): string => `${show(iss.input)} must be a positive integer (leave it out for no limit)`;
const MaxUses = z
  .int({ error: maxUsesError })
  .min(1, { error: maxUsesError })
  .describe('Requests forwarded under the approval; absent: unlimited until expiry.');

const Sha256Hex = z.string({ error: 'must be a string' }).regex(/^[0-9a-f]{64}$/, { error: 'must be a SHA-256 in lower-case hex' });

const Verb = z.enum(RESOURCE_VERBS, { error: (iss) => `${show(iss.input)} is not one of ${RESOURCE_VERBS.join(', ')}` });
const Resource = z
  .string({ error: (iss) => (iss.input === undefined ? `is required: ${RESOURCE_TEXT}` : `must be a string: ${RESOURCE_TEXT}`) })
  .min(1, { error: `is required: ${RESOURCE_TEXT}` })
  .refine(isScopedResource, { error: (iss) => `${show(iss.input)} is invalid: ${RESOURCE_TEXT}` })
  .describe('A plural, optionally group-qualified or with a subresource: `deployments.apps`, `pods/ephemeralcontainers`.');

/** A DNS-ish name, or '' (`empty` says what '' means). */
function nameOrEmpty(re: RegExp, what: string, empty: string) {
  const invalid = (iss: { input?: unknown }): string =>
    iss.input === undefined ? `is required (${empty})` : `${show(iss.input)} is invalid: it must be ${what} (${empty})`;
  return z.string({ error: invalid }).regex(OR_EMPTY(re), { error: invalid }).describe(`${empty}.`);
}
const RestNamespace = nameOrEmpty(DNS_LABEL, LABEL_TEXT, "'' for cluster-scoped resources");
const ObjectName = nameOrEmpty(OBJECT_NAME, 'a Kubernetes object name', "'' for collection verbs (list, watch, deletecollection, create)");

/** Whole seconds from 1 to `max`. */
export function ttlSecondsSchema(max: number) {
  const text = `must be a whole number of seconds from 1 to ${max}`;
  const error = (iss: { input?: unknown }): string => (iss.input === undefined ? `is required: how long the approval is valid, in seconds (1 to ${max})` : `${show(iss.input)} ${text}`);
  return z.int({ error }).min(1, { error }).max(max, { error });
}
const TtlSeconds = ttlSecondsSchema(MAX_TTL_SECONDS).describe('Validity in seconds, at most 1 day.');

const AgentName = z
  .string({ error: (iss) => (iss.input === undefined ? 'is required (the agent name)' : 'must be a string (the agent name)') })
  .regex(/\S/, { error: 'is required (the agent name)' })
  .describe('The agent name (as given to `agent add`) or id.');

/** A required reason, trimmed. */
export const ReasonSchema = z
  .string({ error: 'is required: say why' })
  .trim()
  .min(1, { error: 'is required: say why' })
  .max(MAX_REASON_LENGTH, { error: `is longer than ${MAX_REASON_LENGTH} characters` });
/** An optional reason, trimmed; blank means none. */
export const OptionalReasonSchema = z
  .string({ error: 'must be a string' })
  .trim()
  .max(MAX_REASON_LENGTH, { error: `is longer than ${MAX_REASON_LENGTH} characters` })
  .nullish();

const IsoTime = z.iso.datetime();

// ---------------------------------------------------------------------------------------------
// Scopes

const streamScopeFields = {
  namespace: Namespace,
  pod: PodName,
  container: ContainerName.optional().describe('exec, attach: the resolved container name (required); absent when verbs is only portforward (a port-forward reaches the pod).'),
  verbs: StreamVerbs,
  commands: Commands.optional(),
  maxSessions: MaxSessions.optional(),
  ports: ForwardPorts.optional(),
};

type StreamScopeFields = { verbs: StreamOperation[]; container?: string | undefined; commands?: string[][] | undefined; ports?: number[] | undefined };

/**
 * What a stream scope's fields say together: the command allow-list is exec argv (it needs exec);
 * exec and attach run in a container (it is named), a port-forward reaches the pod (a scope that
 * only forwards names none); ports are what a port-forward may reach (they need portforward).
 */
function streamScopeRules(v: StreamScopeFields, ctx: z.RefinementCtx): void {
  if (v.commands !== undefined && !v.verbs.includes('exec')) {
    ctx.addIssue({ code: 'custom', path: ['commands'], message: 'is an allow-list of exec commands, but verbs does not include exec' });
  }
  const inContainer = v.verbs.includes('exec') || v.verbs.includes('attach');
  if (inContainer && v.container === undefined) {
    ctx.addIssue({ code: 'custom', path: ['container'], message: `is required when verbs include exec or attach (${LABEL_TEXT})` });
  }
  if (!inContainer && v.container !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['container'], message: 'must be left out when verbs is only portforward: a port-forward reaches the pod, not a container' });
  }
  if (v.ports !== undefined && !v.verbs.includes('portforward')) {
    ctx.addIssue({ code: 'custom', path: ['ports'], message: 'names the pod ports a port-forward may reach, but verbs does not include portforward' });
  }
}

/** The refusal of a port-forward grant without ports (after the field's name). */
export const PORT_FORWARD_GRANT_PORTS = 'is required: a port-forward grant names the pod ports it may reach';

/** A direct grant of a port-forward names the ports at once (nobody chooses them later). */
function grantNamesPorts(v: StreamScopeFields, ctx: z.RefinementCtx): void {
  if (v.verbs.includes('portforward') && v.ports === undefined) {
    ctx.addIssue({ code: 'custom', path: ['ports'], message: PORT_FORWARD_GRANT_PORTS });
  }
}

export const StreamScopeSchema = z
  .strictObject({ kind: z.literal('stream'), ...streamScopeFields })
  .superRefine(streamScopeRules)
  .meta({
    id: 'StreamScope',
    description:
      'exec/attach into one container of one pod, or portforward to named ports of one pod (`container` is left out when verbs is only portforward; a held port-forward may ask without `ports`: its approver names them).',
  });

/** Longest Content-Type media type or Content-Encoding a binding holds (RFC 6838: type and subtype at most 127 each). */
export const MAX_MEDIA_TYPE_LENGTH = 256;

/** The exact request a held REST request's approval is bound to. */
export const RestRequestBindingSchema = z
  .strictObject({
    method: z.string({ error: 'is required (the HTTP method)' }).regex(/^[A-Z]{1,16}$/, { error: 'must be an upper-case HTTP method' }),
    path: z
      .string({ error: 'is required (the canonical path)' })
      .regex(/^\//, { error: 'must start with /' })
      .max(MAX_REQUEST_TARGET_LENGTH, { error: `is longer than ${MAX_REQUEST_TARGET_LENGTH} characters` }),
    query: z
      .string({ error: "is required ('' for none)" })
      .max(MAX_REQUEST_TARGET_LENGTH, { error: `is longer than ${MAX_REQUEST_TARGET_LENGTH} characters` })
      .describe("The canonical query: parameters sorted by name (repeated ones keep their order), '' for none."),
    bodySha256: Sha256Hex.nullable().describe('SHA-256 (hex) of the exact body bytes forwarded; null for a request without a body.'),
    contentType: z
      .string({ error: 'is required (the media type, or null for none)' })
      .max(MAX_MEDIA_TYPE_LENGTH, { error: `is longer than ${MAX_MEDIA_TYPE_LENGTH} characters` })
      .nullable()
      .describe(
        'The media type of the Content-Type header: type/subtype lower-cased, parameters dropped (`application/strategic-merge-patch+json`); null without the header. The same bytes as another patch type are another request.',
      ),
    contentEncoding: z
      .string({ error: 'is required (the Content-Encoding, or null for none)' })
      .max(MAX_MEDIA_TYPE_LENGTH, { error: `is longer than ${MAX_MEDIA_TYPE_LENGTH} characters` })
      .nullable()
      .describe('The Content-Encoding header lower-cased (`gzip`); null without the header.'),
  })
  .meta({
    id: 'RestRequestBinding',
    description: 'Method, canonical path and query, the body hash, media type and content encoding of the one request a REST approval covers.',
  });

export const RestScopeSchema = z
  .strictObject({
    kind: z.literal('rest'),
    verb: Verb,
    resource: Resource,
    namespace: RestNamespace,
    name: ObjectName,
    request: RestRequestBindingSchema.optional().describe('Set: only this exact request (same method, path, query, body, media type and content encoding) is covered; absent: any request of this shape.'),
    maxUses: MaxUses.optional(),
  })
  .meta({
    id: 'RestScope',
    description:
      'A REST call: verb on resource in a namespace, by name; with `request`, only that exact request. A held request asks for its exact request, once (`maxUses: 1`).',
  });

export const ApprovalScopeSchema = z
  .discriminatedUnion('kind', [StreamScopeSchema, RestScopeSchema], {
    error: (iss) =>
      iss.code === 'invalid_union'
        ? `${show((iss.input as { kind?: unknown }).kind)} must be "stream" or "rest"`
        : `${iss.input === undefined ? 'is required:' : 'must be'} an object with kind "stream" or "rest"`,
  })
  .meta({ id: 'ApprovalScope' });

export type StreamScope = z.infer<typeof StreamScopeSchema>;
export type RestScope = z.infer<typeof RestScopeSchema>;
export type RestRequestBinding = z.infer<typeof RestRequestBindingSchema>;
export type ApprovalScope = z.infer<typeof ApprovalScopeSchema>;

// ---------------------------------------------------------------------------------------------
// The Approval record

/** Longest body text kept with a held request (the bytes themselves are bound by their hash). */
export const MAX_HELD_BODY_TEXT = 64 * 1024;

export const RiskFindingSchema = z
  .strictObject({ level: z.enum(RISK_LEVELS), text: z.string() })
  .meta({ id: 'RiskFinding', description: '`high`: can run code as root, reach the host, mint credentials or change permissions; `notice`: worth a look; `info`: what it is.' });

export const RiskSummarySchema = z
  .strictObject({
    subject: z.string().describe('What the body is, e.g. `Pod "web"`, `ClusterRoleBinding "x"`, `merge patch`.'),
    patch: z.boolean().describe('The body is a patch: the summary covers what the patch says, not the object it produces.'),
    findings: z.array(RiskFindingSchema),
  })
  .meta({ id: 'RiskSummary', description: "What a held request's body would do, summarized for the approver (best effort for patches)." });
export type RiskSummary = z.infer<typeof RiskSummarySchema>;
export type RiskFinding = z.infer<typeof RiskFindingSchema>;

export const HeldRequestBodySchema = z
  .strictObject({
    contentType: z.string().nullable(),
    bytes: z.int().min(0).describe('Size of the body forwarded.'),
    sha256: Sha256Hex.describe('SHA-256 (hex) of the exact bytes forwarded.'),
    text: z
      .string()
      .nullable()
      .describe(`The body for the approver: JSON pretty-printed, Secret values redacted, at most ${MAX_HELD_BODY_TEXT} characters; null when it cannot be shown safely.`),
    truncated: z.boolean().describe('`text` was cut at its limit.'),
    redacted: z.boolean().describe('Secret values were replaced by `<redacted>` in `text` (the hash binds the real bytes).'),
  })
  .meta({ id: 'HeldRequestBody' });
export type HeldRequestBody = z.infer<typeof HeldRequestBodySchema>;

/** What a held request asked for (shown to approvers). */
export const HeldRequestInfoSchema = z.object({
  method: z.string({ error: 'is required' }).min(1, { error: 'is required' }),
  path: z.string({ error: 'is required' }).min(1, { error: 'is required' }),
  command: z.array(z.string(), { error: 'must be a list of strings' }).optional(),
  query: z.string().optional().describe('REST: the canonical query.'),
  body: HeldRequestBodySchema.optional().describe('REST requests with a body.'),
  risk: RiskSummarySchema.optional().describe('REST requests with a body: what it would do.'),
  client: z.string({ error: 'must be a string' }).optional().describe("The client's address and port (`ip:port`) of the request that created the approval."),
  rule: z.string({ error: 'must be a string' }).optional().describe('The policy rule that held (or auto-approved) the request.'),
  policyHash: z.string({ error: 'must be a string' }).optional().describe('sha256 of the policy version that rule belongs to.'),
});
export type HeldRequestInfo = z.infer<typeof HeldRequestInfoSchema>;

/** One decision on an approval, as recorded: never changed, never removed. */
export const ApprovalDecisionSchema = z
  .strictObject({
    kind: z.enum(DECISION_KINDS),
    by: z.string().describe('Who decided: `user:<name>`, `policy:<rule>@<sha256>` or `system`.'),
    at: IsoTime,
    reason: z.string().nullable().describe('The reason given with this decision (null when none was given).'),
    ttlSeconds: z.int().min(1).nullable().describe('The validity this decision set (granted, approved, auto-approved); null otherwise.'),
    expiresAt: IsoTime.nullable().describe('The deadline this decision set (granted, approved, auto-approved); null otherwise.'),
  })
  .meta({ id: 'ApprovalDecision', description: 'One entry of the append-only decision history.' });
export type ApprovalDecision = z.infer<typeof ApprovalDecisionSchema>;

export const ApprovalSchema = z
  .strictObject({
    id: z.string().describe('`apr_` + 20 base32 characters.'),
    state: z.enum(APPROVAL_STATES).describe('Expiry is applied when read.'),
    agent: z.string().describe('The agent name (as given to `agent add`).'),
    agentId: z.string(),
    scope: ApprovalScopeSchema,
    requestedBy: z.string().describe('`agent:<name>` for a held request, `user:<name>` for a direct grant.'),
    decidedBy: z.string().nullable().describe('`user:<name>` or `policy:<rule>@<sha256>`; null while pending.'),
    reason: z.string().nullable().describe('The reason of the grant, approval or denial (a revocation never overwrites it: see `decisions`).'),
    ttlSeconds: z.int().min(1).describe('Validity once approved.'),
    createdAt: IsoTime.describe('When it was requested or granted.'),
    decidedAt: IsoTime.nullable().describe('When it was approved or denied.'),
    expiresAt: IsoTime.nullable().describe('approved: decision + ttl; pending: when the hold gives up; null when denied.'),
    revokedAt: IsoTime.nullable(),
    revokedBy: z.string().nullable().describe('Who revoked it (`user:<name>`, `system`); null unless revoked.'),
    decisions: z.array(ApprovalDecisionSchema).describe('Every decision, oldest first: grant/approval/denial, then a revocation.'),
    sessionsStarted: z.int().min(0).describe('Sessions started under it (stream scopes), or requests forwarded under it (REST scopes; counted against `maxUses`).'),
    request: HeldRequestInfoSchema.nullable().describe('For held requests: what the agent asked.'),
    nobodyWaitingSince: IsoTime.nullable().describe(
      'pending: every client waiting on it has gone since then; unless one comes back, it ends `abandoned` after the grace (`serve --abandon-grace`). Kept once abandoned.',
    ),
  })
  .meta({ id: 'Approval', description: 'A scoped, timed permission for one agent. Times are ISO 8601 UTC with milliseconds.' });

export type Approval = z.infer<typeof ApprovalSchema>;

// ---------------------------------------------------------------------------------------------
// Request bodies

const grantFields = { agent: AgentName, ttlSeconds: TtlSeconds, reason: ReasonSchema };

export const StreamGrantSchema = z
  .strictObject({ agent: grantFields.agent, ...streamScopeFields, ttlSeconds: grantFields.ttlSeconds, reason: grantFields.reason })
  .superRefine((v, ctx) => {
    streamScopeRules(v, ctx);
    grantNamesPorts(v, ctx);
  })
  .meta({ id: 'StreamGrant', description: 'A direct grant of a stream scope.' });

export const RestGrantSchema = z
  .strictObject({
    agent: grantFields.agent,
    verb: Verb,
    resource: Resource,
    namespace: RestNamespace.optional(),
    name: ObjectName.optional(),
    maxUses: MaxUses.optional(),
    ttlSeconds: grantFields.ttlSeconds,
    reason: grantFields.reason,
  })
  .meta({ id: 'RestGrant', description: "A direct grant of a REST scope, any request of that shape (namespace and name default to '')." });

const GrantUnion = z.xor([StreamGrantSchema, RestGrantSchema]);

/** Fields only a stream grant has, and fields only a REST grant has (`namespace` is shared). */
const STREAM_ONLY = ['pod', 'container', 'verbs', 'commands', 'maxSessions', 'ports'] as const;
const REST_ONLY = ['verb', 'resource', 'name', 'maxUses'] as const;
const SCOPE_CHOICE = 'give either a stream scope (namespace, pod, verbs[, container, commands, ports, maxSessions]) or a REST scope (verb, resource[, namespace, name, maxUses])';

/**
 * A flat grant body has no `kind`: its fields tell which scope it is, and it is checked against
 * that one shape, so a refusal names that shape's field (a plain union would only say "neither").
 */
function byScopeFields(body: unknown, ctx: z.RefinementCtx): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const has = (f: string): boolean => Object.prototype.hasOwnProperty.call(body, f);
  const stream = STREAM_ONLY.filter(has);
  const rest = REST_ONLY.filter(has);
  if (stream.length > 0 !== rest.length > 0) {
    const result = (rest.length > 0 ? RestGrantSchema : StreamGrantSchema).safeParse(body, { error: fragment });
    if (result.success) return result.data;
    // Already finalized (message and path set): passed on as they are.
    for (const issue of result.error.issues) ctx.addIssue({ ...issue } as z.core.$ZodRawIssue);
    return body;
  }
  // No kind, or both: an unknown field is still the first thing to name.
  const known = new Set([...Object.keys(StreamGrantSchema.shape), ...Object.keys(RestGrantSchema.shape)]);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    ctx.addIssue({ code: 'unrecognized_keys', keys: unknown, path: [], message: `is not a field of a grant (fields: ${[...known].join(', ')})` });
  } else if (stream.length > 0) {
    ctx.addIssue({ code: 'custom', path: [rest[0]!], message: `is a REST scope field but the body also has stream scope field "${stream[0]}": ${SCOPE_CHOICE}` });
  } else {
    ctx.addIssue({ code: 'custom', path: ['verbs'], message: `is required: ${SCOPE_CHOICE}` });
  }
  return body;
}

/** POST /v1/approvals: a stream grant or a REST grant, told apart by its fields; both kinds at once are refused. */
export const GrantBodySchema = z.preprocess(byScopeFields, GrantUnion).meta({
  id: 'GrantRequest',
  description: 'Either a stream scope (pod, container, verbs, ...) or a REST scope (verb, resource, ...); a body with fields of both is refused.',
});

/** What a client sends to grant (the CLI builds it, the API validates it). */
export type GrantBody = z.input<typeof GrantUnion>;
export type StreamGrant = z.input<typeof StreamGrantSchema>;
export type RestGrant = z.input<typeof RestGrantSchema>;

export const ApproveBodySchema = z
  .strictObject({
    ttlSeconds: TtlSeconds.nullish().describe('Validity from now; default: what the request carried (900 s unless configured otherwise).'),
    reason: OptionalReasonSchema,
    uses: MaxUses.nullish().describe('REST: how many requests the approval admits; default 1 for `scope: "request"`, unlimited until expiry for `scope: "shape"`.'),
    scope: z
      .enum(REST_APPROVAL_WIDTHS, { error: (iss) => `${show(iss.input)} must be "request" or "shape"` })
      .nullish()
      .describe('REST: `request` (default) covers exactly the request that was held; `shape` widens to any request of its verb, resource, namespace and name, with any body.'),
    ports: ForwardPorts.nullish().describe(
      'portforward: the pod ports the approval lets connections reach, in place of any the request named. Required when the request named none (kubectl over SPDY or the WebSocket tunnel sends its ports only inside the stream).',
    ),
  })
  .meta({ id: 'ApproveRequest' });
export const DenyBodySchema = z.strictObject({ reason: ReasonSchema }).meta({ id: 'DenyRequest' });
export const RevokeBodySchema = z.strictObject({ reason: OptionalReasonSchema }).meta({ id: 'RevokeRequest' });

export type ApproveBody = z.input<typeof ApproveBodySchema>;
export type DenyBody = z.input<typeof DenyBodySchema>;
export type RevokeBody = z.input<typeof RevokeBodySchema>;

/** The service's grant input for a validated grant body (a REST grant's namespace and name default to ''). */
export function grantInput(body: z.output<typeof GrantBodySchema>): GrantInput {
  const { agent, ttlSeconds, reason } = body;
  if ('verb' in body) {
    const scope: RestScope = { kind: 'rest', verb: body.verb, resource: body.resource, namespace: body.namespace ?? '', name: body.name ?? '' };
    if (body.maxUses !== undefined) scope.maxUses = body.maxUses;
    return { agent, ttlSeconds, reason, scope };
  }
  const { namespace, pod, container, verbs, commands, maxSessions, ports } = body;
  const scope: StreamScope = { kind: 'stream', namespace, pod, verbs };
  if (container !== undefined) scope.container = container;
  if (commands !== undefined) scope.commands = commands;
  if (ports !== undefined) scope.ports = ports;
  if (maxSessions !== undefined) scope.maxSessions = maxSessions;
  return { agent, ttlSeconds, reason, scope };
}

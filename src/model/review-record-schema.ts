// The review record of one approval, as a zod schema (declared once: the API validates its answer
// with it and documents it in OpenAPI; the CLI, the web UI and the evidence bundle use its type).
//
// It answers the five questions an auditor asks, each from its own fields:
//   1. who acted                       -> agent, requested
//   2. was approval needed, which rule -> policy
//   3. who approved, when, why         -> decisions
//   4. what scope, did it stay inside  -> scope, conformance
//   5. what happened                   -> sessions (a port-forward's with its connections), requests
// `answers` says each in one sentence, built from those fields only.
import { z } from 'zod';
import { ApprovalScopeSchema, ApprovalSchema } from './approval-schema.js';
import type { ForwardedConnection } from './forward.js';
import { APPROVAL_STATES, FORWARD_OUTCOMES, FORWARD_PROTOCOLS } from './vocabulary.js';

/** Compile-time: every T is a valid input of schema S. */
type Fits<T, S extends z.ZodType> = [T] extends [z.input<S>] ? true : never;
const fits = <T, S extends z.ZodType>(_: Fits<T, S>): void => undefined;

const IsoTime = z.iso.datetime();

export const REVIEW_VERDICTS = ['inside-scope', 'outside-scope', 'unused', 'incomplete'] as const;
export type ReviewVerdict = (typeof REVIEW_VERDICTS)[number];

/** One decision or life-cycle event of the approval, from its audit rows (append-only by the chain). */
export const ReviewDecisionSchema = z
  .strictObject({
    event: z.string().describe('The audit event: `approval.requested`, `approval.approved`, `approval.revoked`, ...'),
    actor: z.string().nullable().describe('`user:<name>`, `agent:<name>`, `policy:<rule>@<sha256>` or `system`.'),
    at: IsoTime,
    reason: z.string().nullable(),
    /** ttlSeconds / expiresAt set by the decision, when it set them. */
    ttlSeconds: z.int().nullable(),
    expiresAt: IsoTime.nullable(),
    auditId: z.int().nullable().describe('The audit row this entry is read from; null for a decision the approval\'s history has and the chain lacks.'),
  })
  .meta({ id: 'ReviewDecision' });

/** One request of the agent against the approval's target during its window. */
export const ReviewAttemptSchema = z
  .strictObject({
    at: IsoTime,
    source: z.string().nullable().describe('The client address and port.'),
    method: z.string().nullable(),
    path: z.string().nullable(),
    stream: z.string().nullable().describe('exec, attach or portforward; null for REST.'),
    command: z.array(z.string()).nullable().describe('The exec argv, when there was one.'),
    statusCode: z.int().nullable(),
    outcome: z.string().nullable().describe('How the request ended: completed, not-approved, no-sessions-left, a session end reason, ...'),
    approvalId: z.string().nullable().describe('The approval the request was held on or ran under.'),
    sessionId: z.string().nullable(),
    /** `this-approval`: it ran (or was refused) under this approval; `policy`: the policy decided it alone; `other-approval`: held or run under another. */
    relation: z.enum(['this-approval', 'policy', 'other-approval']),
    inScope: z.boolean().describe('Whether this approval\'s scope covers the request.'),
    refused: z.boolean().describe('Whether the agent got a refusal (status 400 or more, or no session).'),
    why: z.string().describe('Why it was inside or outside the scope, and what happened to it.'),
    auditId: z.int(),
  })
  .meta({ id: 'ReviewAttempt' });

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/** One forwarded connection of a port-forward session, as the store keeps it (model/forward.ts). */
export const ForwardedConnectionSchema = z
  .strictObject({
    sessionId: z.string(),
    seq: z.int().min(1).describe('1, 2, 3... in the order the client opened them within the session.'),
    port: z.int().min(1).max(65535).describe('The pod port the client asked for.'),
    startedAt: IsoTime,
    endedAt: IsoTime.nullable().describe('Null while open.'),
    outcome: z.enum(FORWARD_OUTCOMES).nullable().describe('closed, refused (outside the approved ports, never dialed), failed (upstream reported an error), cut (expiry, revocation, shutdown); null while open.'),
    detail: z.string().nullable().describe('Why it was refused, failed or cut: the text the client received on its error stream.'),
    bytesIn: z.int().min(0).describe('Bytes from the agent to the pod.'),
    bytesOut: z.int().min(0).describe('Bytes from the pod to the agent.'),
    sha256In: Sha256Hex.nullable().describe('SHA-256 of the bytes to the pod; null while open or when refused.'),
    sha256Out: Sha256Hex.nullable().describe('SHA-256 of the bytes from the pod; null while open or when refused.'),
    rawPath: z.string().nullable().describe("The connection's raw sidecar, relative to the recordings directory; null when refused."),
    rawSha256: Sha256Hex.nullable(),
    protocol: z.enum(FORWARD_PROTOCOLS).nullable().describe('What the first bytes plainly were (`unrecognised` when they were not plain); null when nothing was sent.'),
  })
  .meta({ id: 'ForwardedConnection', description: 'One forwarded connection of a port-forward session.' });
fits<ForwardedConnection, typeof ForwardedConnectionSchema>(true);

/** A forwarded connection in the record: re-checked against the approved ports and window. */
export const ReviewConnectionSchema = ForwardedConnectionSchema.omit({ sessionId: true })
  .extend({
    inScope: z.boolean().describe("Whether the approval's ports (and window) cover it, re-checked."),
    why: z.string().describe('Why; a refused connection is called out as outside the approved ports, with what the client was told.'),
  })
  .meta({ id: 'ReviewConnection' });

export const ReviewSessionSchema = z
  .strictObject({
    id: z.string(),
    operation: z.string().nullable(),
    container: z.string().describe("'' for a port-forward (it reaches the pod)."),
    command: z.array(z.string()),
    tty: z.boolean(),
    transport: z.string(),
    client: z.string().nullable().describe('The client address and port (from the session.start audit row).'),
    startedAt: IsoTime,
    endedAt: IsoTime.nullable(),
    endReason: z.string().nullable(),
    exitCode: z.int().nullable(),
    bytesIn: z.int().nullable(),
    bytesOut: z.int().nullable(),
    castSha256: z.string().nullable(),
    rawSha256: z.string().nullable(),
    files: z.array(z.strictObject({ name: z.string(), size: z.int(), sha256: z.string() })).nullable().describe('Files carried by a tar stream (kubectl cp).'),
    recording: z.string().nullable().describe('Control API path of the asciicast.'),
    inScope: z.boolean().describe('The scope, re-checked against the session row and its start time (and, for a port-forward, every connection that was let through).'),
    why: z.string(),
    connections: z.array(ReviewConnectionSchema).nullable().describe('portforward: every forwarded connection, in order; null for other sessions.'),
  })
  .meta({ id: 'ReviewSession' });

export const ReviewRecordSchema = z
  .strictObject({
    approvalId: z.string(),
    generatedAt: IsoTime,
    answers: z
      .strictObject({
        who: z.string(),
        approvalNeeded: z.string(),
        approvedBy: z.string(),
        scopeKept: z.string(),
        happened: z.string(),
      })
      .describe('The five questions, each answered in one sentence built from the fields below.'),
    agent: z.strictObject({ id: z.string(), name: z.string(), owner: z.string().nullable().describe('The user who owns the agent, when known.') }),
    requested: z
      .strictObject({
        by: z.string(),
        at: IsoTime,
        client: z.string().nullable().describe('Address and port of the client whose request was held.'),
        method: z.string().nullable(),
        path: z.string().nullable(),
        command: z.array(z.string()).nullable(),
      })
      .describe('Who asked, and for held requests what exactly.'),
    policy: z.strictObject({
      needed: z.boolean().describe('Whether a request needed this approval (false for a direct grant nobody asked for).'),
      rule: z.string().nullable().describe('The rule that held the request (or auto-approved it); null for a direct grant.'),
      policyHash: z.string().nullable(),
      policyOrigin: z.string().nullable().describe('Where that policy version was loaded from.'),
      ruleText: z.string().nullable().describe('The rule as written in that policy version.'),
    }),
    decisions: z.array(ReviewDecisionSchema).describe('Every decision and life-cycle event, oldest first; nothing overwrites an earlier one.'),
    approval: ApprovalSchema.describe('The approval as stored now.'),
    scope: z.strictObject({
      approved: ApprovalScopeSchema,
      state: z.enum(APPROVAL_STATES),
      window: z.strictObject({ from: IsoTime.nullable().describe('When it was approved; null if never.'), until: IsoTime.describe('When it ended, or now.') }),
    }),
    conformance: z.strictObject({
      verdict: z
        .enum(REVIEW_VERDICTS)
        .describe(
          'inside-scope: everything that ran under it was covered by its scope and window; outside-scope: something was not (listed); unused: nothing ran under it; incomplete: more requests than a record holds (9,999) were made against a REST scope\'s object, so not every use could be checked.',
        ),
      used: z.int().describe('Sessions and requests that ran under this approval.'),
      outside: z
        .int()
        .describe(
          'Attempts outside the scope (refused, held separately, or run under another approval; forwarded connections to ports outside the approved ones); requests the policy allowed on its own are listed but not counted.',
        ),
      refused: z.int().describe('Attempts that were refused (requests, and forwarded connections).'),
      truncated: z.boolean().describe('More than 9,999 requests against the target: the first 9,999 are listed.'),
      attempts: z.array(ReviewAttemptSchema).describe("Every request of this agent against the approval's pod or object between its creation and its end."),
    }),
    sessions: z.array(ReviewSessionSchema),
  })
  .meta({ id: 'ReviewRecord', description: 'One approval answering the five review questions.' });

export type ReviewRecord = z.infer<typeof ReviewRecordSchema>;
export type ReviewDecision = z.infer<typeof ReviewDecisionSchema>;
export type ReviewAttempt = z.infer<typeof ReviewAttemptSchema>;
export type ReviewSession = z.infer<typeof ReviewSessionSchema>;
export type ReviewConnection = z.infer<typeof ReviewConnectionSchema>;

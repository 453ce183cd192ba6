// Input checks for the approval service, on the schemas of approval-schema.ts. Every refusal is an
// INVALID_FIELD (UNKNOWN_FIELD for a field that does not exist) whose field names the argument's
// part (`scope.pod`, `scope.commands[1][0]`, `ttlSeconds`, ...). Scopes arrive from JSON: nothing
// is assumed about their shape.
import {
  ApprovalScopeSchema,
  ApproveBodySchema,
  HeldRequestInfoSchema,
  MAX_TTL_SECONDS,
  OptionalReasonSchema,
  ReasonSchema,
  ttlSecondsSchema,
  type ApprovalScope,
  type HeldRequestInfo,
} from './approval-schema.js';
import { canonicalScope } from './scope.js';
import { parseInput } from './validation.js';
import type { RestApprovalWidth } from './vocabulary.js';

/** A refused argument that no schema describes (an unknown agent, a missing rule name). */
export { invalidField } from '../errors/index.js';

/** A checked, canonical scope (see canonicalScope). */
export function validateScope(v: unknown): ApprovalScope {
  return canonicalScope(parseInput(ApprovalScopeSchema, v, 'input', 'scope'));
}

export function validateTtl(v: unknown, field = 'ttlSeconds', max = MAX_TTL_SECONDS): number {
  return parseInput(ttlSecondsSchema(max), v, 'input', field);
}

/** A required reason, trimmed. */
export function validateReason(v: unknown, field = 'reason'): string {
  return parseInput(ReasonSchema, v, 'input', field);
}

/** An optional reason: absent, null or blank gives undefined. */
export function optionalReason(v: unknown, field = 'reason'): string | undefined {
  return parseInput(OptionalReasonSchema, v, 'input', field) || undefined;
}

/** What a held request asked for (shown to approvers). */
export function validateRequest(v: unknown): HeldRequestInfo {
  const { method, path, command, query, body, risk, client, rule, policyHash } = parseInput(HeldRequestInfoSchema, v, 'input', 'request');
  return {
    method,
    path,
    ...(command !== undefined ? { command: [...command] } : {}),
    ...(client !== undefined ? { client } : {}),
    ...(rule !== undefined ? { rule } : {}),
    ...(policyHash !== undefined ? { policyHash } : {}),
    ...(query !== undefined ? { query } : {}),
    ...(body !== undefined ? { body } : {}),
    ...(risk !== undefined ? { risk } : {}),
  };
}

/**
 * What an approver changes as they approve: a REST approval's widening (`uses`, `scope`), a
 * port-forward's `ports`; absent or null gives undefined.
 */
export function validateWidening(v: { uses?: unknown; scope?: unknown; ports?: unknown }): { uses?: number; scope?: RestApprovalWidth; ports?: number[] } {
  const uses = v.uses == null ? undefined : parseInput(ApproveBodySchema.shape.uses, v.uses, 'input', 'uses');
  const scope = v.scope == null ? undefined : parseInput(ApproveBodySchema.shape.scope, v.scope, 'input', 'scope');
  const ports = v.ports == null ? undefined : parseInput(ApproveBodySchema.shape.ports, v.ports, 'input', 'ports');
  return { ...(uses != null ? { uses } : {}), ...(scope != null ? { scope } : {}), ...(ports != null ? { ports: [...ports] } : {}) };
}

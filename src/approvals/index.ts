// Approvals: the contract (types.ts), scope helpers, input checks and the service.
export * from './types.js';
export { canonicalScope, hasSessionsLeft, scopeCovers, scopeJson, STREAM_VERBS } from './scope.js';
export {
  badRequest,
  isScopedResource,
  MAX_ARG_LENGTH,
  MAX_ARGV_LENGTH,
  MAX_COMMANDS,
  MAX_REASON_LENGTH,
  MAX_TTL_SECONDS,
  optionalReason,
  RESOURCE_VERBS,
  validateReason,
  validateRequest,
  validateScope,
  validateTtl,
} from './validate.js';
export { asOf, DEFAULT_APPROVAL_TTL_SECONDS, effectiveState, SqliteApprovalService, type SqliteApprovalServiceOptions } from './service.js';

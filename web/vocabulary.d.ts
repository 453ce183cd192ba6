// The types of /ui/vocabulary.js, which the control endpoint generates from these very
// declarations (src/api/web-ui.ts, vocabularyModule).
export { APPROVAL_STATES, DECIDER_ROLES, SESSION_STATES } from '../src/model/vocabulary.js';
export { MAX_REASON_LENGTH, MAX_TTL_SECONDS } from '../src/model/approval-schema.js';

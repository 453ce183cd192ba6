// GET /v1/approvals/:id/record: the review record (readers: reviewer, approver, admin), built by
// evidence/record.ts from the stores. Like GET /v1/approvals/:id it holds no recording bytes, so
// reading it is not an audit event (downloads of recordings and evidence exports are).
import { buildReviewRecord, type ReviewSources } from '../evidence/record.js';
import type { Authenticate } from './auth.js';
import { getApprovalRecord } from './contract.js';
import { ApiRouter } from './mount.js';

export interface RecordRoutesDeps extends ReviewSources {
  authenticate: Authenticate;
}

export function recordRoutes(deps: RecordRoutesDeps): ApiRouter {
  return new ApiRouter(deps.authenticate).add(getApprovalRecord, async ({ params }) => buildReviewRecord(deps, params.id));
}

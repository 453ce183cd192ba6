// The approvals part of the control API (/v1/approvals): approvers and admins grant, approve, deny
// and revoke; reviewers (and everyone with a user token) read. The life cycle, its rules (nobody
// approves what they requested, agents never decide) and the audit rows live in the
// ApprovalService; its BastionErrors (INVALID_FIELD, INVALID_STATE, FORBIDDEN, NOT_FOUND) are
// answered as they are. The bodies are validated with the schemas of model/approval-schema.ts.
import type { Actor, ApprovalService } from '../model/approval.js';
import { grantInput } from '../model/approval-schema.js';
import type { User } from '../store/types.js';
import type { Authenticate } from './auth.js';
import { approveApproval, denyApproval, getApproval, grantApproval, listApprovals, revokeApproval } from './contract.js';
import { notFound } from './http.js';
import { ApiRouter } from './mount.js';

export interface ApprovalRoutesDeps {
  approvals: ApprovalService;
  authenticate: Authenticate;
}

/** The actor the service sees for an authenticated control-API user. */
export function actorOf(user: User): Actor {
  return { kind: 'user', name: user.name, role: user.role };
}

export function approvalRoutes(deps: ApprovalRoutesDeps): ApiRouter {
  const { approvals } = deps;
  return new ApiRouter(deps.authenticate)
    .add(listApprovals, async ({ query }) => ({
      items: await approvals.list({ ...(query.state !== undefined ? { state: query.state } : {}), ...(query.agent !== undefined ? { agent: query.agent } : {}) }),
    }))
    .add(grantApproval, async ({ user, body }) => approvals.grant(grantInput(body), actorOf(user)))
    .add(getApproval, async ({ params }) => {
      const approval = await approvals.get(params.id);
      if (!approval) throw notFound(`approval ${JSON.stringify(params.id)}`);
      return approval;
    })
    .add(approveApproval, async ({ user, params, body }) => {
      const opts = {
        ...(body.ttlSeconds != null ? { ttlSeconds: body.ttlSeconds } : {}),
        ...(body.reason ? { reason: body.reason } : {}),
        ...(body.uses != null ? { uses: body.uses } : {}),
        ...(body.scope != null ? { scope: body.scope } : {}),
        ...(body.ports != null ? { ports: body.ports } : {}),
      };
      return approvals.approve(params.id, actorOf(user), opts);
    })
    .add(denyApproval, async ({ user, params, body }) => approvals.deny(params.id, actorOf(user), body.reason))
    .add(revokeApproval, async ({ user, params, body }) => approvals.revoke(params.id, actorOf(user), body.reason || undefined));
}

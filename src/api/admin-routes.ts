// Who is who and what happened: whoami, agents, users (admins manage), the audit log and the
// policy versions (readers read).
import type { ApprovalService } from '../model/approval.js';
import type { AgentStore, AuditLog, PolicyVersionStore, UserStore } from '../store/types.js';
import type { AuditTrustReport } from '../evidence/audit-trust.js';
import { resolveSigningKey, type SigningKeySource } from '../evidence/signing-key.js';
import { actorOf } from './approvals-routes.js';
import type { Authenticate } from './auth.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import {
  createAgent,
  createUser,
  disableUser,
  getAgent,
  getPolicy,
  getSigningKey,
  listAgents,
  listUsers,
  queryAudit,
  revokeAgent,
  rotateUserToken,
  verifyAudit,
  whoami,
} from './contract.js';
import { notFound } from './http.js';
import { ApiRouter } from './mount.js';

export interface AdminRoutesDeps {
  agents: AgentStore;
  /** Ends what a revoked agent holds: its approvals, and through them its sessions and requests. */
  approvals: Pick<ApprovalService, 'agentRevoked'>;
  users: UserStore;
  audit: AuditLog;
  policyVersions: PolicyVersionStore;
  /** `audit verify`: the chain against the signed checkpoints, the tables against the chain. */
  verifyAudit(): Promise<AuditTrustReport>;
  /** The key that signs evidence and checkpoints (published: GET /v1/signing-key). */
  signingKey: SigningKeySource;
  /** The policy in force now. */
  currentPolicy(): { hash: string; origin: string };
  /** Renders the kubeconfig an agent uses to reach the Kubernetes endpoint. */
  agentKubeconfig(agentName: string, token: string): string;
  authenticate: Authenticate;
}

export function adminRoutes(d: AdminRoutesDeps): ApiRouter {
  return new ApiRouter(d.authenticate)
    .add(whoami, async ({ user }) => user)
    .add(listAgents, async () => ({ items: await d.agents.listAgents() }))
    .add(createAgent, async ({ user, body }) => {
      const owner = body.owner ?? user.name;
      // Naming someone else as the owner decides who may not approve the agent: an admin's call.
      if (owner !== user.name && user.role !== 'admin') {
        throw new BastionError(ErrorCode.FORBIDDEN, `only an admin may name another user as an agent's owner (user:${user.name} named ${owner})`, undefined, { field: 'owner' });
      }
      const { agent, token } = await d.agents.createAgent(body.name, owner);
      await d.audit.append({ event: 'agent.created', actor: `user:${user.name}`, agent: { id: agent.id, name: agent.name }, details: { owner } });
      return { agent, token, kubeconfig: d.agentKubeconfig(agent.name, token) };
    })
    .add(getAgent, async ({ params }) => {
      const agent = await d.agents.getAgentByName(params.name);
      if (!agent) throw notFound(`agent ${JSON.stringify(params.name)}`);
      return agent;
    })
    .add(revokeAgent, async ({ user, params, body }) => {
      const agent = await d.agents.revokeAgent(params.name);
      const reason = body?.reason || undefined;
      await d.audit.append({ event: 'agent.revoked', actor: `user:${user.name}`, agent: { id: agent.id, name: agent.name }, details: { reason: reason ?? null } });
      // The token already stops working; now everything the agent holds ends at once.
      await d.approvals.agentRevoked({ id: agent.id, name: agent.name }, actorOf(user), reason);
      return agent;
    })
    .add(listUsers, async () => ({ items: await d.users.listUsers() }))
    .add(createUser, async ({ user: admin, body }) => {
      const { user, token } = await d.users.createUser(body.name, body.role);
      await d.audit.append({ event: 'user.created', actor: `user:${admin.name}`, details: { user: user.name, role: user.role } });
      return { user, token };
    })
    .add(disableUser, async ({ user: admin, params }) => {
      const before = await d.users.getUserByName(params.name);
      const user = await d.users.disableUser(params.name);
      // Idempotent, but only the first disable is an event.
      if (before?.disabledAt === null) await d.audit.append({ event: 'user.disabled', actor: `user:${admin.name}`, details: { user: user.name, role: user.role } });
      return user;
    })
    .add(rotateUserToken, async ({ user: caller, params }) => {
      if (caller.name !== params.name && caller.role !== 'admin') {
        throw new BastionError(ErrorCode.FORBIDDEN, `only an admin may rotate another user's token (user:${caller.name} asked for ${params.name}'s)`);
      }
      const { user, token } = await d.users.rotateToken(params.name);
      await d.audit.append({ event: 'user.token-rotated', actor: `user:${caller.name}`, details: { user: user.name, role: user.role } });
      return { user, token };
    })
    .add(queryAudit, async ({ query }) => ({
      items: await d.audit.query({
        ...(query.since ? { since: query.since } : {}),
        ...(query.agent ? { agent: query.agent } : {}),
        ...(query.event ? { event: query.event } : {}),
        ...(query.limit !== undefined ? { limit: query.limit } : {}),
      }),
    }))
    .add(verifyAudit, async () => d.verifyAudit())
    .add(getSigningKey, async () => {
      const key = resolveSigningKey(d.signingKey);
      return { algorithm: 'Ed25519' as const, keyId: key.keyId, fingerprint: key.fingerprint, publicKeyPem: key.publicKeyPem };
    })
    .add(getPolicy, async () => ({ current: d.currentPolicy(), versions: await d.policyVersions.listPolicyVersions() }));
}

// The control endpoint: JSON API under /v1 for approvers, reviewers, admins and scripts, plus
// /healthz and /metrics. Users authenticate with bearer tokens; roles gate each route.
import http from 'node:http';
import https from 'node:https';
import { boundUrl, listen } from '../net/listen.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isBastionError } from '../errors/index.js';
import type { Logger } from '../observability/log.js';
import type { MetricsExposition } from '../observability/metrics.js';
import type { AgentStore, AuditLog, PolicyVersionStore, UserRole, UserStore } from '../store/types.js';
import { USER_ROLES } from '../store/types.js';
import { ADMIN, ANY_ROLE, READERS, userAuthenticator, type Authenticate } from './auth.js';
import { ApiProblem, readJson, rejectUnknownFields, requireString, sendJson, sendProblem } from './http.js';
import { Router } from './router.js';
import type { ApprovalService } from '../model/approval.js';
import { registerApprovalRoutes } from './approvals-routes.js';
import { registerOpenApiRoute } from './openapi.js';
import { registerWebUi } from './web-ui.js';
import { registerSessionRoutes } from './sessions-routes.js';
import type { SessionStore } from '../store/types.js';
import type { SigningKeySource } from '../evidence/signing-key.js';

export interface ControlDeps {
  agents: AgentStore;
  approvals: ApprovalService;
  sessions: SessionStore;
  recordingsDir: string;
  /** The bastion's Ed25519 key for evidence manifests. */
  signingKey: SigningKeySource;
  users: UserStore;
  audit: AuditLog;
  policyVersions: PolicyVersionStore;
  /** The policy in force now. */
  currentPolicy(): { hash: string; origin: string };
  metrics: MetricsExposition;
  /** Renders the kubeconfig an agent uses to reach the Kubernetes endpoint. */
  agentKubeconfig(agentName: string, token: string): string;
  log: Logger;
}

export interface ControlEndpointOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
}


export class ControlEndpoint {
  private readonly server: http.Server | https.Server;
  readonly router = new Router();

  constructor(
    private readonly deps: ControlDeps,
    private readonly opts: ControlEndpointOptions,
  ) {
    this.server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }) : http.createServer();
    this.server.on('request', (req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        deps.log.error({ err }, 'control request failed');
        if (!res.headersSent) sendProblem(res, new ApiProblem(500, 'INTERNAL', 'internal error'));
        else res.destroy();
      });
    });
    this.user = userAuthenticator(deps.users);
    this.routes();
  }

  get url(): string {
    return boundUrl(this.server, this.opts.tls ? 'https' : 'http');
  }

  listen(): Promise<void> {
    return listen(this.server, this.opts.host, this.opts.port);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private readonly user: Authenticate;

  private routes(): void {
    const d = this.deps;
    this.router
      .add('GET', '/healthz', async ({ res }) => sendJson(res, 200, { status: 'ok' }))
      .add('GET', '/metrics', async ({ res }) => {
        const body = await d.metrics.render();
        res.writeHead(200, { 'Content-Type': d.metrics.contentType, 'Content-Length': Buffer.byteLength(body) });
        res.end(body);
      })
      .add('GET', '/v1/whoami', async ({ req, res }) => sendJson(res, 200, await this.user(req, ANY_ROLE)))
      .add('GET', '/v1/agents', async ({ req, res }) => {
        await this.user(req, READERS);
        sendJson(res, 200, { items: await d.agents.listAgents() });
      })
      .add('POST', '/v1/agents', async ({ req, res }) => {
        const user = await this.user(req, ADMIN);
        const body = await readJson(req);
        rejectUnknownFields(body, ['name']);
        const name = requireString(body, 'name');
        const { agent, token } = await d.agents.createAgent(name);
        await d.audit.append({ event: 'agent.created', actor: `user:${user.name}`, agent: { id: agent.id, name: agent.name } });
        sendJson(res, 201, { agent, token, kubeconfig: d.agentKubeconfig(agent.name, token) });
      })
      .add('GET', '/v1/agents/:name', async ({ req, res, params }) => {
        await this.user(req, READERS);
        const agent = await d.agents.getAgentByName(params.name!);
        if (!agent) throw new ApiProblem(404, 'NOT_FOUND', `agent "${params.name}" not found`);
        sendJson(res, 200, agent);
      })
      .add('POST', '/v1/agents/:name/revoke', async ({ req, res, params }) => {
        const user = await this.user(req, ADMIN);
        const agent = await d.agents.revokeAgent(params.name!);
        await d.audit.append({ event: 'agent.revoked', actor: `user:${user.name}`, agent: { id: agent.id, name: agent.name } });
        sendJson(res, 200, agent);
      })
      .add('GET', '/v1/users', async ({ req, res }) => {
        await this.user(req, ADMIN);
        sendJson(res, 200, { items: await d.users.listUsers() });
      })
      .add('POST', '/v1/users', async ({ req, res }) => {
        const admin = await this.user(req, ADMIN);
        const body = await readJson(req);
        rejectUnknownFields(body, ['name', 'role']);
        const name = requireString(body, 'name');
        const role = requireString(body, 'role');
        if (!USER_ROLES.includes(role as UserRole)) throw new ApiProblem(400, 'INVALID_FIELD', `"role" must be one of ${USER_ROLES.join(', ')}`, 'role');
        const { user, token } = await d.users.createUser(name, role as UserRole);
        await d.audit.append({ event: 'user.created', actor: `user:${admin.name}`, details: { user: user.name, role: user.role } });
        sendJson(res, 201, { user, token });
      })
      .add('GET', '/v1/audit', async ({ req, res, query }) => {
        await this.user(req, READERS);
        const limit = query.get('limit');
        if (limit !== null && !/^\d{1,5}$/.test(limit)) throw new ApiProblem(400, 'INVALID_QUERY', '"limit" must be a whole number', 'limit');
        const since = query.get('since');
        if (since !== null && Number.isNaN(Date.parse(since))) throw new ApiProblem(400, 'INVALID_QUERY', '"since" must be an ISO 8601 time', 'since');
        const items = await d.audit.query({
          ...(since ? { since } : {}),
          ...(query.get('agent') ? { agent: query.get('agent')! } : {}),
          ...(query.get('event') ? { event: query.get('event')! } : {}),
          ...(limit ? { limit: Number(limit) } : {}),
        });
        sendJson(res, 200, { items });
      })
      .add('GET', '/v1/audit/verify', async ({ req, res }) => {
        await this.user(req, READERS);
        sendJson(res, 200, await d.audit.verify());
      })
      .add('GET', '/v1/policy', async ({ req, res }) => {
        await this.user(req, READERS);
        sendJson(res, 200, { current: d.currentPolicy(), versions: await d.policyVersions.listPolicyVersions() });
      });
    registerApprovalRoutes(this.router, { approvals: d.approvals, authenticate: this.user });
    registerSessionRoutes(this.router, { sessions: d.sessions, approvals: d.approvals, audit: d.audit, recordingsDir: d.recordingsDir, signingKey: d.signingKey, authenticate: this.user });
    registerOpenApiRoute(this.router);
    registerWebUi(this.router);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control.invalid');
    const match = this.router.match(req.method ?? 'GET', url.pathname);
    try {
      if (match === undefined) throw new ApiProblem(404, 'NOT_FOUND', `no route ${url.pathname}`);
      if (match === 'method') throw new ApiProblem(405, 'METHOD_NOT_ALLOWED', `${req.method} not allowed on ${url.pathname}`);
      await match.handler({ req, res, params: match.params, query: url.searchParams });
    } catch (err) {
      if (err instanceof ApiProblem) return sendProblem(res, err);
      if (isBastionError(err)) {
        const status = err.httpStatus;
        return sendProblem(res, new ApiProblem(status === 500 ? 400 : status, err.code, err.message));
      }
      throw err;
    }
  }
}

// The control endpoint's express app: one router per area, mounted from the route table
// (contract.ts), plus the web UI's files. Unknown paths are 404, a known path with another method
// 405, and every error is answered from the error table in the documented shape.
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import type { SigningKeySource } from '../evidence/signing-key.js';
import type { AuditTrustReport } from '../evidence/audit-trust.js';
import { BastionError, ErrorCode, httpStatusOf, isBastionError } from '../errors/index.js';
import type { ApprovalService } from '../model/approval.js';
import type { Logger } from '../observability/log.js';
import type { MetricsExposition } from '../observability/metrics.js';
import type { AgentStore, AuditLog, PolicyVersionStore, SessionStore, UserStore } from '../store/types.js';
import { adminRoutes } from './admin-routes.js';
import { approvalRoutes } from './approvals-routes.js';
import { userAuthenticator } from './auth.js';
import { healthz, metrics, openapi } from './contract.js';
import { sendJson, sendProblem } from './http.js';
import { ApiRouter, type MountedRoute } from './mount.js';
import { openApiDocument } from './openapi.js';
import { sessionRoutes } from './sessions-routes.js';
import { recordRoutes } from './record-routes.js';
import { webUiRoutes } from './web-ui.js';

export interface ControlDeps {
  agents: AgentStore;
  approvals: ApprovalService;
  sessions: SessionStore;
  recordingsDir: string;
  /** The bastion's Ed25519 key for evidence manifests and audit checkpoints. */
  signingKey: SigningKeySource;
  /** The data dir's audit-checkpoints.jsonl (evidence bundles carry the checkpoints covering their rows). */
  checkpointsFile?: string;
  /** GET /v1/audit/verify: the chain against the signed checkpoints, the tables against the chain (evidence/audit-trust.ts). */
  verifyAudit(): Promise<AuditTrustReport>;
  users: UserStore;
  audit: AuditLog;
  policyVersions: PolicyVersionStore;
  /** The policy in force now. */
  currentPolicy(): { hash: string; origin: string };
  /** What GET /metrics serves: the bastion's prom-client registry. */
  metrics: MetricsExposition;
  /** Renders the kubeconfig an agent uses to reach the Kubernetes endpoint. */
  agentKubeconfig(agentName: string, token: string): string;
  log: Logger;
  /** Where the web UI's files are (default: web/ at the package root). */
  webDir?: string;
}

function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    // A path that is not valid percent-encoding names no route.
    const e = isBastionError(err)
      ? err
      : err instanceof URIError
        ? new BastionError(ErrorCode.NOT_FOUND, `no route ${req.path}`)
        : new BastionError(ErrorCode.INTERNAL, 'internal error', undefined, { cause: err });
    if (httpStatusOf(e.code) === 500) log.error({ err }, 'control request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendProblem(res, e);
  };
}

export function createControlApp(deps: ControlDeps): { app: Express; routes: MountedRoute[] } {
  const authenticate = userAuthenticator(deps.users);
  const doc = openApiDocument();
  const system = new ApiRouter(authenticate)
    .add(healthz, async () => ({ status: 'ok' as const }))
    .add(metrics, async ({ res }) => {
      const body = await deps.metrics.render();
      res.writeHead(200, { 'Content-Type': deps.metrics.contentType, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    })
    .add(openapi, async ({ res }) => sendJson(res, 200, doc));
  const areas = [
    system,
    adminRoutes({ ...deps, authenticate }),
    approvalRoutes({ approvals: deps.approvals, authenticate }),
    sessionRoutes({ ...deps, authenticate }),
    recordRoutes({
      approvals: deps.approvals,
      sessions: deps.sessions,
      audit: deps.audit,
      policyVersions: deps.policyVersions,
      agentOwner: async (id) => (await deps.agents.getAgentById(id))?.owner ?? null,
      authenticate,
    }),
    webUiRoutes(deps.webDir !== undefined ? { webDir: deps.webDir } : {}),
  ];

  const app = express();
  app.disable('x-powered-by');
  app.set('case sensitive routing', true);
  for (const area of areas) app.use(area.router);
  const routes = areas.flatMap((a) => a.list());
  // express answers a known path with an unknown method 404; the API says 405.
  const methodNotAllowed: RequestHandler = (req, _res, next) => next(new BastionError(ErrorCode.METHOD_NOT_ALLOWED, `${req.method} not allowed on ${req.path}`));
  for (const pattern of new Set(routes.map((r) => r.pattern))) app.all(pattern, methodNotAllowed);
  app.use((req, _res, next) => next(new BastionError(ErrorCode.NOT_FOUND, `no route ${req.path}`)));
  app.use(errorHandler(deps.log));
  return { app, routes };
}

// Every example in the route table (and so in GET /v1/openapi.json) is sent to its route on a real
// ControlEndpoint over a temporary store holding the example world (examples.ts), and answers the
// documented status, a body that parses with the documented schema, and the documented value
// (ids, tokens, paths and times that vary per run compared by kind only).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteApprovalService } from '../approvals/service.js';
import { createPrivateKey } from 'node:crypto';
import { auditVerifier } from '../evidence/audit-trust.js';
import { checkpointsPath } from '../evidence/checkpoints.js';
import { signingKeyFrom } from '../evidence/signing-key.js';
import type { Approval } from '../model/approval.js';
import { silentLogger } from '../observability/log.js';
import { recordingPaths } from '../recording/recorder.js';
import { openStore } from '../store/index.js';
import { prometheusContentType } from 'prom-client';
import { ROUTES } from './contract.js';
import { ControlEndpoint } from './control-endpoint.js';
import {
  APPROVED_STREAM,
  DENIED_REST,
  ENDED_SESSION,
  EXAMPLE_AGENT,
  EXAMPLE_AGENT_OWNER,
  EXAMPLE_APPROVALS,
  EXAMPLE_CAST,
  EXAMPLE_POLICY,
  EXAMPLE_RAW,
  EXAMPLE_USERS,
  PENDING_EXEC,
  REVOKED_REST,
  PENDING_REST,
  APPROVED_FORWARD,
  EXAMPLE_FORWARD_RAW,
  FORWARD_SESSION,
  PENDING_FORWARD,
} from './examples.js';
import { openApiDocument } from './openapi.js';
import { isJsonResponse, type ExampleSpec, type ExampleUser, type RouteSpec } from './route-spec.js';
import { ErrorSchema } from './schemas.js';

const sha = (b: string): string => createHash('sha256').update(b).digest('hex');

/** The example world's key (EXAMPLE_SIGNING_KEY): the Ed25519 key whose seed is 32 bytes of 0x42. */
const signingKey = signingKeyFrom(
  createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 0x42)]), format: 'der', type: 'pkcs8' }),
);

/** The example world in a fresh store, served by a ControlEndpoint. */
async function world(): Promise<{ control: ControlEndpoint; tokens: Record<ExampleUser, string>; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kb-examples-'));
  const dataDir = join(dir, 'data');
  const recordingsDir = join(dir, 'recordings');
  const store = openStore(dataDir);
  const approvals = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  const tokens = {} as Record<ExampleUser, string>;
  for (const [name, role] of Object.entries(EXAMPLE_USERS)) tokens[name as ExampleUser] = (await store.users.createUser(name, role)).token;
  const { agent } = await store.agents.createAgent(EXAMPLE_AGENT, EXAMPLE_AGENT_OWNER);

  // The documented records with this run's agent id and times near now (so nothing has expired).
  const now = Date.now();
  const at = (s: number): string => new Date(now + s * 1000).toISOString();
  const create = (a: Approval, state: 'pending' | 'approved') =>
    store.approvals.create({
      id: a.id,
      state,
      agentId: agent.id,
      agent: agent.name,
      scope: a.scope,
      requestedBy: a.requestedBy,
      decidedBy: state === 'pending' ? null : a.decidedBy,
      reason: state === 'pending' ? null : a.reason,
      ttlSeconds: a.ttlSeconds,
      createdAt: at(-60),
      decidedAt: state === 'pending' ? null : at(-60),
      expiresAt: at(state === 'pending' ? 240 : a.ttlSeconds - 60),
      request: a.request,
      ...(state === 'approved' ? { decision: { ...a.decisions[0]!, at: at(-60), expiresAt: at(a.ttlSeconds - 60) } } : {}),
    });
  await create(PENDING_EXEC, 'pending');
  await create(APPROVED_STREAM, 'approved');
  await create(DENIED_REST, 'pending');
  await store.approvals.transition(DENIED_REST.id, {
    from: 'pending',
    to: 'denied',
    set: { decidedBy: DENIED_REST.decidedBy, decidedAt: at(-30), expiresAt: null, reason: DENIED_REST.reason },
    decision: { ...DENIED_REST.decisions[0]!, at: at(-30) },
  });
  await create(REVOKED_REST, 'approved');
  await store.approvals.transition(REVOKED_REST.id, { from: 'approved', to: 'revoked', set: { revokedAt: at(-30) }, decision: { ...REVOKED_REST.decisions[1]!, at: at(-30) } });
  await create(PENDING_REST, 'pending');
  await create(PENDING_FORWARD, 'pending');
  await create(APPROVED_FORWARD, 'approved');
  expect(EXAMPLE_APPROVALS.length).toBe(7);

  const s = ENDED_SESSION;
  await store.sessions.start({
    id: s.id,
    approvalId: s.approvalId,
    agent: { id: agent.id, name: agent.name },
    operation: s.operation,
    transport: s.transport,
    protocol: s.protocol,
    upstreamProtocol: s.upstreamProtocol,
    namespace: s.namespace,
    pod: s.pod,
    container: s.container,
    command: [...s.command],
    tty: s.tty,
    client: s.client,
  });
  await approvals.startSession(APPROVED_STREAM.id);
  const paths = recordingPaths(recordingsDir, s.approvalId, s.id);
  mkdirSync(paths.dir, { recursive: true });
  writeFileSync(paths.castPath, EXAMPLE_CAST);
  writeFileSync(paths.rawPath, EXAMPLE_RAW);
  await store.sessions.end(s.id, { endReason: 'completed', exitCode: 0, status: { metadata: {}, status: 'Success' }, bytesIn: 0, bytesOut: EXAMPLE_RAW.length });
  await store.sessions.setRecording(s.id, {
    castPath: paths.castPath,
    castSha256: sha(EXAMPLE_CAST),
    rawPath: paths.rawPath,
    rawSha256: sha(EXAMPLE_RAW),
    channelSha256: { stdout: sha(EXAMPLE_RAW) },
  });
  await store.policyVersions.recordPolicyVersion(EXAMPLE_POLICY);

  // The port-forward session, its connections (one let through, one refused) and the first one's raw sidecar.
  const f = FORWARD_SESSION;
  await store.sessions.start({
    id: f.id,
    approvalId: f.approvalId,
    agent: { id: agent.id, name: agent.name },
    operation: f.operation,
    transport: f.transport,
    protocol: f.protocol,
    upstreamProtocol: f.upstreamProtocol,
    namespace: f.namespace,
    pod: f.pod,
    container: f.container,
    command: [],
    tty: f.tty,
    client: f.client,
  });
  await approvals.startSession(APPROVED_FORWARD.id);
  for (const c of f.connections) {
    await store.sessions.connectionStarted({ sessionId: f.id, seq: c.seq, port: c.port, startedAt: at(-20 + c.seq), rawPath: c.rawPath });
    if (c.rawPath !== null) {
      mkdirSync(join(recordingsDir, APPROVED_FORWARD.id), { recursive: true });
      writeFileSync(join(recordingsDir, c.rawPath), EXAMPLE_FORWARD_RAW);
    }
    const { endedAt: _e, sessionId: _s, seq: _q, port: _p, startedAt: _t, rawPath: _r, ...end } = c;
    await store.sessions.connectionEnded(f.id, c.seq, { ...end, endedAt: at(-19 + c.seq) });
  }
  await store.sessions.end(f.id, { endReason: f.endReason, exitCode: null, status: null, bytesIn: f.bytesIn, bytesOut: f.bytesOut });

  const control = new ControlEndpoint(
    {
      agents: store.agents,
      users: store.users,
      audit: store.audit,
      policyVersions: store.policyVersions,
      currentPolicy: () => ({ hash: EXAMPLE_POLICY.hash, origin: EXAMPLE_POLICY.origin }),
      metrics: { contentType: prometheusContentType, render: async () => '# no metrics in this test\n' },
      agentKubeconfig: (name, token) => `apiVersion: v1\nkind: Config\n# ${name} ${token}\n`,
      log: silentLogger(),
      approvals,
      sessions: store.sessions,
      recordingsDir,
      signingKey,
      verifyAudit: auditVerifier({
        snapshot: store.readSnapshot,
        checkpointsFile: checkpointsPath(dataDir),
        publicKeyPem: () => signingKey.publicKeyPem,
      }),
    },
    { host: '127.0.0.1', port: 0 },
  );
  await control.listen();
  return {
    control,
    tokens,
    close: async () => {
      await control.close();
      approvals.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Values that differ on every run: compared by kind (string or null) only. */
const VARYING = new Set(['agentId', 'at', 'createdAt', 'decidedAt', 'expiresAt', 'revokedAt', 'disabledAt', 'startedAt', 'endedAt', 'firstLoadedAt', 'lastLoadedAt', 'time', 'token', 'kubeconfig', 'castPath', 'rawPath']);
/** Ids the world fixes; any other `id` is made by the call. */
const WORLD_IDS = new Set<unknown>([...EXAMPLE_APPROVALS.map((a) => a.id), ENDED_SESSION.id, FORWARD_SESSION.id]);

function differences(actual: unknown, documented: unknown, at = '$', key = ''): string[] {
  if (VARYING.has(key) || (key === 'id' && !WORLD_IDS.has(documented))) {
    return (actual === null) === (documented === null) && typeof actual === typeof documented ? [] : [`${at}: ${JSON.stringify(actual)}, documented ${JSON.stringify(documented)}`];
  }
  if (Array.isArray(documented)) {
    if (!Array.isArray(actual) || actual.length !== documented.length) return [`${at}: ${JSON.stringify(actual)}, documented ${JSON.stringify(documented)}`];
    return documented.flatMap((d, i) => differences(actual[i], d, `${at}[${i}]`));
  }
  if (typeof documented === 'object' && documented !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return [`${at}: ${JSON.stringify(actual)}, documented an object`];
    const keys = new Set([...Object.keys(documented), ...Object.keys(actual)]);
    return [...keys].flatMap((k) => differences((actual as Record<string, unknown>)[k], (documented as Record<string, unknown>)[k], `${at}.${k}`, k));
  }
  return Object.is(actual, documented) ? [] : [`${at}: ${JSON.stringify(actual)}, documented ${JSON.stringify(documented)}`];
}

function caller(spec: RouteSpec, ex: ExampleSpec): ExampleUser | null {
  if (ex.as !== undefined) return ex.as;
  if (spec.roles === null) return null;
  return spec.roles.includes('approver') ? 'alice' : 'adam';
}

const cases = ROUTES.flatMap((spec: RouteSpec) => Object.entries(spec.examples ?? {}).map(([name, ex]) => ({ name: `${spec.operationId}.${name}`, spec, ex })));

describe('every documented example, sent to its route', () => {
  it('covers every operation, and the document carries exactly these examples', () => {
    const documented = new Set(cases.map((c) => c.spec.operationId));
    // Only GET /v1/users goes without one: its answer is the list of tokens' owners, nothing to show.
    expect(ROUTES.filter((r) => !documented.has(r.operationId)).map((r) => r.operationId)).toEqual(['listUsers']);
    const doc = openApiDocument() as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, { examples?: Record<string, { value: unknown }> }> } }>> };
    for (const { spec, ex, name } of cases) {
      const short = name.slice(spec.operationId.length + 1);
      if (ex.body !== undefined) {
        const body = doc.paths[spec.path]![spec.method.toLowerCase()]!.requestBody!.content['application/json']!.examples![short];
        expect(body?.value, name).toEqual(ex.body);
      }
    }
  });

  it.each(cases)('$name', async ({ spec, ex }) => {
    const w = await world();
    try {
      const path = spec.path.replace(/\{([^}]+)\}/g, (_, p: string) => encodeURIComponent(ex.params?.[p] ?? ''));
      const url = new URL(path, w.control.url);
      for (const [k, v] of Object.entries(ex.query ?? {})) url.searchParams.set(k, v);
      const user = caller(spec, ex);
      const headers: Record<string, string> = user ? { Authorization: `Bearer ${w.tokens[user]}` } : {};
      if (ex.body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(url, { method: spec.method, headers, ...(ex.body !== undefined ? { body: JSON.stringify(ex.body) } : {}) });
      const text = await res.text();
      expect(res.status, text).toBe(ex.status);

      const success = ex.status === spec.response.status;
      if (success && !isJsonResponse(spec.response)) {
        expect(res.headers.get('content-type')).toMatch(new RegExp(`^${spec.response.contentType.replace(/[/+.]/g, '\\$&')}`));
        return;
      }
      const schema = success && isJsonResponse(spec.response) ? spec.response.schema : ErrorSchema;
      const body: unknown = JSON.parse(text);
      expect(schema.safeParse(body).error?.issues ?? [], 'the answer fits its documented schema').toEqual([]);
      if (ex.response !== undefined) expect(differences(body, ex.response)).toEqual([]);
    } finally {
      await w.close();
    }
  });
});

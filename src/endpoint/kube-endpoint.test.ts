// The Kubernetes endpoint's upgrade handler, failure paths: a real KubeEndpoint on 127.0.0.1:0
// over fakes for its ports, in front of a small fake upstream API server, driven with raw HTTPS
// upgrade requests. Every refusal is a metav1.Status, and the audit port gets one row per request.
import https from 'node:https';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { HoldManager, HoldOutcome } from '../approvals/holds.js';
import type { Approval, ApprovalService, HeldRequest, Operation } from '../model/approval.js';
import type { KubeRequest, PolicyDecision, Principal } from '../model/request.js';
import { silentLogger } from '../observability/log.js';
import { createBastionMetrics } from '../observability/metrics.js';
import { apiStatus, type Status } from '../protocol/status.js';
import { createLoopbackServingMaterial, type ServingMaterial } from '../tls/ca.js';
import type { UpstreamTarget } from '../upstream/upstream.js';
import { KubeEndpoint, type KubeEndpointOptions } from './kube-endpoint.js';
import type { PolicyDecider, RequestAuditRecord } from './ports.js';

const TOKEN = 'agent-token-1';
const BOT: Principal = { kind: 'agent', id: 'agt_1', name: 'bot-a' };
const HASH = 'ab'.repeat(32);

/** Throws on any use: the failure paths must not reach these ports. */
function unused<T>(name: string): T {
  return new Proxy(
    {},
    {
      get: (_, prop) => {
        if (prop === 'then') return undefined;
        return () => {
          throw new Error(`${name}.${String(prop)} must not be called here`);
        };
      },
    },
  ) as T;
}

// ---- a fake upstream API server ---------------------------------------------------------------

interface FakeUpstream {
  url: string;
  caPem: string;
  requests: { method: string; url: string; authorization: string | undefined }[];
  /** Resolves with the response of the next request to `path`, which is held until released. */
  holdNext(path: string): Promise<{ release: () => void }>;
  close(): Promise<void>;
}

const POD = {
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: { name: 'web-0', namespace: 'demo' },
  spec: { containers: [{ name: 'app' }, { name: 'sidecar' }] },
};

async function startFakeUpstream(material: ServingMaterial): Promise<FakeUpstream> {
  const requests: FakeUpstream['requests'] = [];
  const held = new Map<string, (h: { release: () => void }) => void>();
  const server = https.createServer({ cert: material.serving.cert, key: material.serving.key }, (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    const path = (req.url ?? '').split('?')[0]!;
    const json = (code: number, body: unknown): void => {
      const bytes = Buffer.from(JSON.stringify(body));
      res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': bytes.length }).end(bytes);
    };
    const waiter = held.get(path);
    if (waiter) {
      held.delete(path);
      waiter({ release: () => json(200, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'slow' } }) });
      return;
    }
    const pod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
    if (pod && pod[2] === 'web-0') return json(200, { ...POD, metadata: { ...POD.metadata, namespace: pod[1] } });
    if (pod) {
      return json(404, apiStatus(404, 'NotFound', `pods "${pod[2]}" not found`, { name: pod[2], kind: 'pods' }));
    }
    json(404, apiStatus(404, 'NotFound', 'the server could not find the requested resource'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    caPem: material.ca.cert,
    requests,
    holdNext: (path) => new Promise((resolve) => held.set(path, resolve)),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function upstreamTarget(server: string, caPem: string): UpstreamTarget {
  return {
    server,
    description: 'fake upstream',
    requestOptions: async () => ({ ca: caPem, headers: { Authorization: 'Bearer upstream-credential' } }),
  };
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ---- the endpoint over fakes ------------------------------------------------------------------

/** allow everywhere, deny in namespace `locked`, approval in namespace `gated`. */
const policy: PolicyDecider & { calls: KubeRequest[] } = {
  calls: [],
  decide(req) {
    this.calls.push(req);
    const ns = req.kind === 'resource' ? req.namespace : '';
    const d = (action: PolicyDecision['action'], rule: string): PolicyDecision => ({ action, rule, policyHash: HASH, reason: '' });
    if (ns === 'locked') return d('deny', 'locked-namespace');
    if (ns === 'gated') return d('approval', 'exec-needs-approval');
    return d('allow', 'allow-all');
  },
};

interface Held {
  agent: { id: string; name: string };
  op: Operation;
  request: HeldRequest['request'];
  clientRun: string | undefined;
}

function fakeHolds(held: Held[]): HoldManager {
  return {
    obtain: async (agent: Held['agent'], op: Operation, request: Held['request'], _signal: AbortSignal, clientRun?: string): Promise<HoldOutcome> => {
      held.push({ agent, op, request, clientRun });
      return { ok: false, refusal: { reason: 'denied', approval: { id: 'apr_fake', decidedBy: 'user:ann', reason: null } as Approval } };
    },
  } as unknown as HoldManager;
}

interface Started {
  endpoint: KubeEndpoint;
  port: number;
  audit: RequestAuditRecord[];
  /** The rows handed to recordBatched (also in `audit`). */
  batched: RequestAuditRecord[];
  held: Held[];
}

async function startEndpoint(material: ServingMaterial, upstream: UpstreamTarget, over: Partial<KubeEndpointOptions> = {}): Promise<Started> {
  const audit: RequestAuditRecord[] = [];
  const batched: RequestAuditRecord[] = [];
  const held: Held[] = [];
  const opts: KubeEndpointOptions = {
    host: '127.0.0.1',
    port: 0,
    tls: { cert: material.serving.cert, key: material.serving.key },
    upstream,
    agents: { authenticateAgent: async (token) => (token === TOKEN ? BOT : undefined) },
    policy,
    audit: {
      record: async (row) => {
        audit.push(row);
      },
      recordBatched: async (row) => {
        audit.push(row);
        batched.push(row);
      },
      accepting: () => true,
      recordAggregate: async () => {},
    },
    // Every failure gets its own row here (the limits have their own tests).
    failureAudit: { burst: 100_000, perMinute: 100_000, intervalSeconds: 60 },
    // Requests that pass hold a lease (watching the agent); nothing here decides approvals.
    approvals: Object.assign(Object.create(unused<ApprovalService>('approvals')) as ApprovalService, {
      watch: () => () => {},
      watchAgent: () => () => {},
    }),
    holds: fakeHolds(held),
    sessions: unused('sessions'),
    sinks: () => {
      throw new Error('no session may start in these tests');
    },
    recordConnection: () => {
      throw new Error('no port-forward may start in these tests');
    },
    metrics: createBastionMetrics(),
    log: silentLogger(),
    agentActive: async () => true,
    sessionSetupSeconds: 10,
    impersonate: false,
    expiryWarningSeconds: 0,
    ...over,
  };
  const endpoint = new KubeEndpoint(opts);
  await endpoint.listen();
  return { endpoint, port: Number(new URL(endpoint.url).port), audit, batched, held };
}

// ---- raw HTTPS upgrade requests ---------------------------------------------------------------

type Transport = 'spdy' | 'websocket';

interface RawResponse {
  statusLine: string;
  code: number;
  headers: Record<string, string>;
  body: string;
}

function upgradeHead(transport: Transport, path: string, extra: Record<string, string> = {}, token: string | null = TOKEN): string {
  const headers: Record<string, string> =
    transport === 'spdy'
      ? { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io', 'Content-Length': '0' }
      : {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
        };
  const all = { Host: '127.0.0.1', ...(token === null ? {} : { Authorization: `Bearer ${token}` }), ...headers, ...extra };
  const method = transport === 'spdy' ? 'POST' : 'GET';
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
}

function parseResponse(raw: string): RawResponse {
  const split = raw.indexOf('\r\n\r\n');
  const head = split < 0 ? raw : raw.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return { statusLine, code: Number(statusLine.split(' ')[1]), headers, body: split < 0 ? '' : raw.slice(split + 4) };
}

/** Opens a TLS connection to the endpoint; the caller writes raw HTTP and reads everything until the server ends. */
function connect(port: number, caPem: string): Promise<{ socket: tls.TLSSocket; response: Promise<RawResponse> }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, ALPNProtocols: ['http/1.1'] }, () => {
      const response = new Promise<RawResponse>((done) => {
        let raw = '';
        socket.on('data', (c: Buffer) => (raw += c.toString('latin1')));
        socket.on('end', () => done(parseResponse(raw)));
        socket.on('close', () => done(parseResponse(raw)));
      });
      resolve({ socket, response });
    });
    socket.once('error', reject);
  });
}

/** One REST request with the agent's token on its own connection (Connection: close); its answer. */
async function restOnce(port: number, method: string, path: string): Promise<RawResponse> {
  const { socket, response } = await connect(port, material.ca.cert);
  socket.on('error', () => undefined);
  socket.write(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
  const r = await response;
  socket.destroy();
  return r;
}

async function upgrade(port: number, caPem: string, head: string): Promise<RawResponse> {
  const { socket, response } = await connect(port, caPem);
  socket.on('error', () => undefined);
  socket.write(head);
  const r = await response;
  socket.destroy();
  return r;
}

const statusOf = (r: RawResponse): Status => JSON.parse(r.body) as Status;

// ---- tests ------------------------------------------------------------------------------------

let material: ServingMaterial;
let upstream: FakeUpstream;
let e: Started;

beforeAll(async () => {
  material = await createLoopbackServingMaterial('kube-endpoint test CA');
  upstream = await startFakeUpstream(material);
  e = await startEndpoint(material, upstreamTarget(upstream.url, upstream.caPem));
});
afterAll(async () => {
  await e?.endpoint.close(0);
  await upstream?.close();
});
afterEach(() => {
  e.audit.length = 0;
  e.held.length = 0;
  upstream.requests.length = 0;
});

/** The audit row for the one request a test made (waits for it; fails on more than one). */
async function onlyAuditRow(): Promise<RequestAuditRecord> {
  await expect.poll(() => e.audit.length, { timeout: 10_000 }).toBeGreaterThan(0);
  expect(e.audit).toHaveLength(1);
  return e.audit[0]!;
}

const EXEC_LS = '/api/v1/namespaces/demo/pods/web-0/exec?command=ls&stdin=true&stdout=true&stderr=true';

describe.each<Transport>(['spdy', 'websocket'])('upgrade refusals over %s', (transport) => {
  const send = (path: string, extra: Record<string, string> = {}, token: string | null = TOKEN): Promise<RawResponse> =>
    upgrade(e.port, material.ca.cert, upgradeHead(transport, path, extra, token));

  it('no token: 401 Status; audited as an authentication denial with no agent', async () => {
    const r = await send(EXEC_LS, {}, null);
    expect(r.statusLine).toBe('HTTP/1.1 401 Unauthorized');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['connection']).toBe('close');
    expect(Number(r.headers['content-length'])).toBe(Buffer.byteLength(r.body));
    expect(statusOf(r)).toMatchObject({ kind: 'Status', status: 'Failure', code: 401, reason: 'Unauthorized' });
    expect(await onlyAuditRow()).toMatchObject({ agent: null, decision: 'deny', rule: 'authentication', policyHash: null, status: 401, request: null });
    expect(upstream.requests).toEqual([]);
  });

  it('an upgrade of something other than exec/attach/portforward: 400 Status, audited deny', async () => {
    const r = await send('/api/v1/namespaces/demo/pods');
    expect(r.code).toBe(400);
    expect(statusOf(r)).toEqual(apiStatus(400, 'BadRequest', 'kube-bastion upgrades only exec, attach and portforward requests'));
    const row = await onlyAuditRow();
    expect(row).toMatchObject({
      agent: { id: BOT.id, name: BOT.name },
      method: transport === 'spdy' ? 'POST' : 'GET',
      path: '/api/v1/namespaces/demo/pods',
      decision: 'deny',
      rule: 'allow-all',
      policyHash: HASH,
      status: 400,
      approvalId: null,
      bytesIn: 0,
      bytesOut: 0,
    });
    expect(upstream.requests).toEqual([]);
  });

  it("port-forward to an unknown pod: upstream's 404 Status before any upgrade; the pod lookup is all upstream saw", async () => {
    const r = await send('/api/v1/namespaces/demo/pods/nope/portforward?ports=8080');
    expect(r.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(statusOf(r)).toEqual(apiStatus(404, 'NotFound', 'pods "nope" not found', { name: 'nope', kind: 'pods' }));
    expect(upstream.requests).toEqual([{ method: 'GET', url: '/api/v1/namespaces/demo/pods/nope', authorization: 'Bearer upstream-credential' }]);
    expect(await onlyAuditRow()).toMatchObject({ decision: 'allow', status: 404, request: expect.objectContaining({ stream: 'portforward', name: 'nope' }) });
  });

  it('exec without a command: 400 Status, before any pod lookup', async () => {
    const r = await send('/api/v1/namespaces/demo/pods/web-0/exec?stdin=true&stdout=true');
    expect(r.code).toBe(400);
    expect(statusOf(r)).toEqual(apiStatus(400, 'BadRequest', 'you must specify at least one command for the container'));
    expect(await onlyAuditRow()).toMatchObject({ decision: 'deny', status: 400 });
    expect(upstream.requests).toEqual([]);
  });

  it("policy deny: 403 Status naming the rule; audited with the rule and hash; upstream never asked", async () => {
    const r = await send('/api/v1/namespaces/locked/pods/web-0/exec?command=sh&stdin=true&stdout=true');
    expect(r.code).toBe(403);
    expect(statusOf(r)).toMatchObject({
      reason: 'Forbidden',
      details: { causes: [{ reason: 'KubeBastionDenied', message: 'locked-namespace' }, { reason: 'KubeBastionPolicy', message: HASH }] },
    });
    expect(await onlyAuditRow()).toMatchObject({ decision: 'deny', rule: 'locked-namespace', policyHash: HASH, status: 403 });
    expect(upstream.requests).toEqual([]);
  });

  it("unknown pod: upstream's 404 Status is passed through as is; audited allow/404", async () => {
    const r = await send('/api/v1/namespaces/demo/pods/nope/exec?command=ls&stdout=true');
    expect(r.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(statusOf(r)).toEqual(apiStatus(404, 'NotFound', 'pods "nope" not found', { name: 'nope', kind: 'pods' }));
    expect(upstream.requests).toEqual([{ method: 'GET', url: '/api/v1/namespaces/demo/pods/nope', authorization: 'Bearer upstream-credential' }]);
    expect(await onlyAuditRow()).toMatchObject({ decision: 'allow', rule: 'allow-all', status: 404, request: expect.objectContaining({ name: 'nope' }) });
  });

  it('a container the pod does not have: 400 Status naming it', async () => {
    const r = await send(`${EXEC_LS}&container=db`);
    expect(r.code).toBe(400);
    expect(statusOf(r)).toEqual(apiStatus(400, 'BadRequest', 'container db is not valid for pod web-0'));
    expect(await onlyAuditRow()).toMatchObject({ decision: 'allow', status: 400 });
  });

  it('needs an approval and the hold is refused: the hold sees the resolved container and the client run; 403 audited with the approval', async () => {
    const r = await send('/api/v1/namespaces/gated/pods/web-0/exec?command=ls&stdout=true', { 'Kubectl-Session': 'run-42', 'Kubectl-Command': 'kubectl exec' });
    expect(r.code).toBe(403);
    expect(statusOf(r).message).toBe('pods "web-0" is forbidden: kube-bastion approval apr_fake was denied by user:ann');
    expect(e.held).toEqual([
      {
        agent: { id: BOT.id, name: BOT.name },
        // No -c: the first container, resolved before the scope is built.
        op: { kind: 'stream', verb: 'exec', namespace: 'gated', pod: 'web-0', container: 'app', command: ['ls'] },
        // Where it came from and the rule (and policy version) that held it, for the approver.
        request: {
          method: transport === 'spdy' ? 'POST' : 'GET',
          path: '/api/v1/namespaces/gated/pods/web-0/exec',
          command: ['ls'],
          client: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
          rule: 'exec-needs-approval',
          policyHash: 'ab'.repeat(32),
        },
        clientRun: 'run-42',
      },
    ]);
    expect(await onlyAuditRow()).toMatchObject({
      decision: 'approval',
      rule: 'exec-needs-approval',
      status: 403,
      approvalId: 'apr_fake',
      hints: { kubectlSession: 'run-42', kubectlCommand: 'kubectl exec' },
    });
  });
});

describe('upstream unreachable during the pod lookup', () => {
  let down: Started;
  beforeAll(async () => {
    down = await startEndpoint(material, upstreamTarget(`https://127.0.0.1:${await closedPort()}`, material.ca.cert));
  });
  afterAll(async () => {
    await down?.endpoint.close(0);
  });

  it('answers 502 with a Status saying upstream is unreachable, and writes one audit row', async () => {
    const r = await upgrade(down.port, material.ca.cert, upgradeHead('spdy', EXEC_LS));
    expect(r.statusLine).toBe('HTTP/1.1 502 Bad Gateway');
    const status = statusOf(r);
    expect(status).toMatchObject({ kind: 'Status', code: 502, reason: 'ServiceUnavailable', status: 'Failure' });
    expect(status.message).toMatch(/^kube-bastion could not reach the upstream API server: /);
    await expect.poll(() => down.audit.length).toBe(1);
    expect(down.audit[0]).toMatchObject({ decision: 'error', status: 502, outcome: 'upstream-unavailable' });
  });
});

describe('upstream credentials cannot be obtained (an exec plugin or token file failing)', () => {
  let noCreds: Started;
  beforeAll(async () => {
    noCreds = await startEndpoint(material, {
      server: upstream.url,
      description: 'upstream whose credentials fail',
      requestOptions: async () => {
        throw new Error('exec plugin: token expired');
      },
    });
  });
  afterAll(async () => {
    await noCreds?.endpoint.close(0);
  });

  it('an upgrade gets a 502 Status saying why, and exactly one audit row', async () => {
    const r = await upgrade(noCreds.port, material.ca.cert, upgradeHead('spdy', EXEC_LS));
    expect(r.code).toBe(502);
    expect(statusOf(r)).toMatchObject({ kind: 'Status', code: 502, status: 'Failure' });
    expect(statusOf(r).message).toMatch(/token expired/);
    await expect.poll(() => noCreds.audit.length, { timeout: 5000 }).toBe(1);
    expect(noCreds.audit[0]).toMatchObject({ decision: 'error', status: 502, outcome: 'upstream-unavailable', path: EXEC_LS });
    expect(upstream.requests).toEqual([]);
  });

  it('a REST request gets a 502 Status saying why, and exactly one audit row', async () => {
    noCreds.audit.length = 0;
    const r = await restOnce(noCreds.port, 'GET', '/api/v1/namespaces/demo/configmaps/x');
    expect(r.code).toBe(502);
    expect(r.body).toMatch(/token expired/);
    await expect.poll(() => noCreds.audit.length, { timeout: 5000 }).toBe(1);
    expect(noCreds.audit[0]).toMatchObject({ decision: 'error', status: 502, outcome: 'upstream-unavailable' });
    expect(upstream.requests).toEqual([]);
  });
});

describe('a REST client that leaves before upstream answers', () => {
  it('is audited client-closed (one row), not as an unreachable upstream', async () => {
    const { socket } = await connect(e.port, material.ca.cert);
    socket.on('error', () => undefined);
    const slow = upstream.holdNext('/api/v1/namespaces/demo/configmaps/left');
    socket.write(`GET /api/v1/namespaces/demo/configmaps/left HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const { release } = await slow;
    socket.destroy();
    await expect.poll(() => e.audit.length, { timeout: 5000 }).toBe(1);
    release();
    await new Promise((r) => setTimeout(r, 100));
    expect(e.audit).toHaveLength(1);
    expect(e.audit[0]).toMatchObject({ path: '/api/v1/namespaces/demo/configmaps/left', decision: 'allow', outcome: 'client-closed' });
  });
});

describe('a failure nobody foresaw while a request is handled (the approval store unreadable)', () => {
  let broken: Started;
  beforeAll(async () => {
    broken = await startEndpoint(material, upstreamTarget(upstream.url, upstream.caPem), {
      holds: {
        obtain: async () => {
          throw new Error('SQLITE_IOERR: disk I/O error');
        },
      } as unknown as HoldManager,
    });
  });
  afterAll(async () => {
    await broken?.endpoint.close(0);
  });

  it('an upgrade gets a 500 Status and still its one audit row', async () => {
    const path = EXEC_LS.replace('/demo/', '/gated/');
    const r = await upgrade(broken.port, material.ca.cert, upgradeHead('websocket', path));
    expect(r.code).toBe(500);
    expect(statusOf(r)).toMatchObject({ kind: 'Status', code: 500 });
    await expect.poll(() => broken.audit.length, { timeout: 5000 }).toBe(1);
    await new Promise((res) => setTimeout(res, 100));
    expect(broken.audit).toHaveLength(1);
    expect(broken.audit[0]).toMatchObject({ path, decision: 'error', status: 500, outcome: 'error', rule: 'exec-needs-approval' });
  });

  it('a REST request gets a 500 Status and still its one audit row', async () => {
    broken.audit.length = 0;
    const r = await restOnce(broken.port, 'DELETE', '/api/v1/namespaces/gated/configmaps/x');
    expect(r.code).toBe(500);
    await expect.poll(() => broken.audit.length, { timeout: 5000 }).toBe(1);
    expect(broken.audit[0]).toMatchObject({ method: 'DELETE', decision: 'error', status: 500, outcome: 'error' });
    expect(upstream.requests.filter((q) => q.url.includes('/gated/'))).toEqual([]);
  });
});

describe('audit durability of REST rows', () => {
  it('an allowed GET is handed to the group commit; a write and a denied read are recorded durably', async () => {
    e.audit.length = 0;
    e.batched.length = 0;
    // Forwarded (the fake upstream knows no configmaps: its 404 is passed through).
    expect((await restOnce(e.port, 'GET', '/api/v1/namespaces/demo/configmaps/read')).code).toBe(404);
    expect((await restOnce(e.port, 'DELETE', '/api/v1/namespaces/demo/configmaps/write')).code).toBe(404);
    expect((await restOnce(e.port, 'GET', '/api/v1/namespaces/locked/configmaps/x')).code).toBe(403);
    await expect.poll(() => e.audit.length, { timeout: 5000 }).toBe(3);
    expect(e.batched.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/v1/namespaces/demo/configmaps/read']);
  });
});

describe('the audit log cannot commit (a batch commit failed)', () => {
  let failing: Started;
  const rows: RequestAuditRecord[] = [];
  beforeAll(async () => {
    failing = await startEndpoint(material, upstreamTarget(upstream.url, upstream.caPem), {
      audit: {
        record: async (row) => void rows.push(row),
        recordBatched: async (row) => void rows.push(row),
        accepting: () => false,
        recordAggregate: async () => {},
      },
    });
  });
  afterAll(async () => {
    await failing?.endpoint.close(0);
  });

  it('a REST request is refused with a 503 Status and never reaches upstream; its row says why', async () => {
    const before = upstream.requests.length;
    const r = await restOnce(failing.port, 'GET', '/api/v1/namespaces/demo/configmaps/closed');
    expect(r.code).toBe(503);
    expect(JSON.parse(r.body)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'kube-bastion cannot write its audit log; requests are refused until it can',
      reason: 'ServiceUnavailable',
      code: 503,
    });
    await expect.poll(() => rows.length, { timeout: 5000 }).toBe(1);
    expect(rows[0]).toMatchObject({ decision: 'error', status: 503, outcome: 'audit-unavailable', rule: 'allow-all' });
    expect(upstream.requests.length).toBe(before);
  });

  it('an upgrade is refused with a 503 Status before any pod lookup', async () => {
    rows.length = 0;
    const before = upstream.requests.length;
    const r = await upgrade(failing.port, material.ca.cert, upgradeHead('websocket', EXEC_LS));
    expect(r.code).toBe(503);
    expect(statusOf(r)).toMatchObject({ kind: 'Status', code: 503, reason: 'ServiceUnavailable' });
    await expect.poll(() => rows.length, { timeout: 5000 }).toBe(1);
    expect(rows[0]).toMatchObject({ decision: 'error', status: 503, outcome: 'audit-unavailable' });
    expect(upstream.requests.length).toBe(before);
  });
});

describe('a client that leaves while its request is held', () => {
  it.each<Transport>(['spdy', 'websocket'])('over %s: one audit row, outcome client-closed (499), not not-approved', async (transport) => {
    let entered!: () => void;
    const holding = new Promise<void>((r) => (entered = r));
    const s = await startEndpoint(material, upstreamTarget(upstream.url, upstream.caPem), {
      holds: {
        obtain: (_agent: unknown, _op: unknown, _request: unknown, signal: AbortSignal): Promise<HoldOutcome> => {
          entered();
          return new Promise((resolve) =>
            signal.addEventListener('abort', () => resolve({ ok: false, refusal: { reason: 'gone', approval: { id: 'apr_pending' } as Approval } }), { once: true }),
          );
        },
      } as unknown as HoldManager,
    });
    try {
      const path = EXEC_LS.replace('/demo/', '/gated/');
      const { socket } = await connect(s.port, material.ca.cert);
      socket.on('error', () => undefined);
      socket.write(upgradeHead(transport, path));
      await holding;
      socket.destroy();
      await expect.poll(() => s.audit.length, { timeout: 5000 }).toBe(1);
      expect(s.audit[0]).toMatchObject({ path, decision: 'approval', status: 499, outcome: 'client-closed', approvalId: 'apr_pending' });
    } finally {
      await s.endpoint.close(0);
    }
  });
});

describe('shutting down', () => {
  it('an upgrade arriving while the endpoint drains gets 503 and its audit row; the request in flight finishes', async () => {
    const s = await startEndpoint(material, upstreamTarget(upstream.url, upstream.caPem));
    const { socket, response } = await connect(s.port, material.ca.cert);
    socket.on('error', () => undefined);
    // A REST request in flight keeps the connection (and the drain) busy…
    const slow = upstream.holdNext('/api/v1/namespaces/demo/configmaps/slow');
    socket.write(`GET /api/v1/namespaces/demo/configmaps/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    const { release } = await slow;
    const closing = s.endpoint.close(30_000);
    // …and the upgrade that follows it on the same connection is refused.
    socket.write(upgradeHead('spdy', EXEC_LS));
    const r = await response;
    expect(r.statusLine).toBe('HTTP/1.1 503 Service Unavailable');
    expect(statusOf(r)).toEqual(apiStatus(503, 'ServiceUnavailable', 'kube-bastion is shutting down'));
    release();
    await closing;
    socket.destroy();
    // One row per request: the refused upgrade (first to finish) and the REST request.
    expect(s.audit.map((row) => [row.method, row.path, row.decision, row.status])).toEqual([
      ['POST', EXEC_LS, 'deny', 503],
      ['GET', '/api/v1/namespaces/demo/configmaps/slow', 'allow', 200],
    ]);
    expect(s.audit[0]).toMatchObject({ rule: 'shutting-down', outcome: 'shutdown', agent: { name: BOT.name } });
  });
});

describe('query booleans as the API server reads them', () => {
  const rest = (path: string): Promise<RawResponse> => restOnce(e.port, 'GET', path);

  it.each(['True', 'true', 'TRUE', 't', 'T', '1'])('watch=%s is a watch: the policy and the audit row see verb watch, upstream gets the query as sent', async (spelling) => {
    policy.calls.length = 0;
    await rest(`/api/v1/namespaces/demo/pods?watch=${spelling}`);
    const row = await onlyAuditRow();
    expect(row.request).toMatchObject({ verb: 'watch', resource: 'pods' });
    expect(policy.calls.map((c) => c.verb)).toEqual(['watch']);
    expect(upstream.requests.map((r) => r.url)).toEqual([`/api/v1/namespaces/demo/pods?watch=${spelling}`]);
  });

  it('watch=False is a list', async () => {
    await rest('/api/v1/namespaces/demo/pods?watch=False');
    expect((await onlyAuditRow()).request).toMatchObject({ verb: 'list' });
  });

  it('watch=f (ParseBool: false, the API server: a watch) is refused with a Status naming the parameter; upstream never asked', async () => {
    const r = await rest('/api/v1/namespaces/demo/pods?watch=f');
    expect(r.code).toBe(400);
    const status = statusOf(r);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', code: 400, reason: 'BadRequest', details: { causes: [{ reason: 'FieldValueInvalid', field: 'watch' }] } });
    expect(status.message).toContain('watch="f"');
    expect((await onlyAuditRow()).decision).toBe('deny');
    expect(upstream.requests).toEqual([]);
  });

  it.each<Transport>(['spdy', 'websocket'])('exec with stdin=yes over %s: 400 Status naming stdin, before any pod lookup', async (transport) => {
    const r = await upgrade(e.port, material.ca.cert, upgradeHead(transport, '/api/v1/namespaces/demo/pods/web-0/exec?command=sh&stdin=yes&stdout=True'));
    expect(r.code).toBe(400);
    const status = statusOf(r);
    expect(status.details?.causes).toEqual([{ reason: 'FieldValueInvalid', field: 'stdin', message: expect.stringContaining('stdin="yes"') }]);
    expect(upstream.requests).toEqual([]);
  });
});

// The example world the documented examples speak of: one agent, four users, an approval in each
// state and a recorded session. contract.ts quotes these records in its examples;
// openapi-examples.test.ts builds the same world in a temporary store and sends every example.
import { createHash } from 'node:crypto';
import type { Approval, StreamScope } from '../model/approval.js';
import { describeHeldBody } from '../model/held-body.js';
import type { ExampleUser } from './route-spec.js';
import type { UserRole } from '../model/vocabulary.js';

export const EXAMPLE_AGENT = 'claude';
export const EXAMPLE_AGENT_ID = '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70';
/** The approver who runs claude: the one user who may not approve its requests. */
export const EXAMPLE_AGENT_OWNER = 'bob';

export const EXAMPLE_USERS: Readonly<Record<ExampleUser, UserRole>> = { alice: 'approver', bob: 'approver', rita: 'reviewer', adam: 'admin' };

export const EXAMPLE_POLICY = {
  source: 'apiVersion: kube-bastion/v1\nkind: Policy\ndefault: deny\nrules: []\n',
  hash: '40044a19550438a5f947e62071eacd6e4472c205fe250c4ef04d5e2e63ec879d',
  origin: '/etc/kube-bastion/policy.yaml',
} as const;

/**
 * The example world's signing key (GET /v1/signing-key). openapi-examples.test.ts signs with the
 * Ed25519 key whose 32-byte seed is all 0x42, so these are the values it answers.
 */
export const EXAMPLE_SIGNING_KEY = {
  algorithm: 'Ed25519',
  keyId: '9a82517f9af19416',
  fingerprint: 'SHA256:moJRf5rxlBbZj9vPGTcms6lcC2/sHVGIS/Phtzm6LvQ',
  publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAIVL40Zt5HSRFMkLhXy6rbLfP+ntqXtMAl5YOBpiB2xI=\n-----END PUBLIC KEY-----\n',
} as const;

const base = { agent: EXAMPLE_AGENT, agentId: EXAMPLE_AGENT_ID, revokedAt: null, revokedBy: null, sessionsStarted: 0, nobodyWaitingSince: null } as const;

/** An exec held for approval. */
export const PENDING_EXEC: Approval = {
  ...base,
  id: 'apr_k3qzm2x7v4nsp6r2t5wa',
  state: 'pending',
  scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] },
  requestedBy: 'agent:claude',
  decidedBy: null,
  reason: null,
  ttlSeconds: 900,
  createdAt: '2025-06-02T09:14:03.120Z',
  decidedAt: null,
  expiresAt: '2025-06-02T09:19:03.120Z',
  decisions: [],
  request: {
    method: 'POST',
    path: '/api/v1/namespaces/demo/pods/web-0/exec',
    command: ['sh', '-c', 'ls /data'],
    client: '10.0.4.17:52814',
    rule: 'exec-needs-approval',
    policyHash: EXAMPLE_POLICY.hash,
  },
};

/** The body of PENDING_REST: what `kubectl run debug --image=busybox` with a privileged override sends. */
const POD_BODY = JSON.stringify({
  kind: 'Pod',
  apiVersion: 'v1',
  metadata: { name: 'debug', namespace: 'demo', creationTimestamp: null },
  spec: {
    containers: [{ name: 'debug', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 3600'], securityContext: { privileged: true } }],
    volumes: [{ name: 'host', hostPath: { path: '/' } }],
  },
});
const POD_BODY_SHA256 = createHash('sha256').update(POD_BODY).digest('hex');
const POD_SHOWN = describeHeldBody(Buffer.from(POD_BODY), { contentType: 'application/json', resource: 'pods', sha256: POD_BODY_SHA256 });

/** A held `create pods`: bound to its exact body, once; the approver sees the body and its risks. */
export const PENDING_REST: Approval = {
  ...base,
  id: 'apr_p5q6r7s2t3v4w5x6y7za',
  state: 'pending',
  scope: {
    kind: 'rest',
    verb: 'create',
    resource: 'pods',
    namespace: 'demo',
    name: '',
    request: { method: 'POST', path: '/api/v1/namespaces/demo/pods', query: 'fieldManager=kubectl-run', bodySha256: POD_BODY_SHA256, contentType: 'application/json', contentEncoding: null },
    maxUses: 1,
  },
  requestedBy: 'agent:claude',
  decidedBy: null,
  reason: null,
  ttlSeconds: 900,
  createdAt: '2025-06-02T09:40:00.000Z',
  decidedAt: null,
  expiresAt: '2025-06-02T09:45:00.000Z',
  decisions: [],
  request: { method: 'POST', path: '/api/v1/namespaces/demo/pods', query: 'fieldManager=kubectl-run', body: POD_SHOWN.body, risk: POD_SHOWN.risk },
};

/** A direct stream grant with a command allow-list, one session started. */
export const APPROVED_STREAM: Approval = {
  ...base,
  id: 'apr_b7c2d3f4g5h6j7k3m6na',
  state: 'approved',
  scope: {
    kind: 'stream',
    namespace: 'demo',
    pod: 'web-0',
    container: 'app',
    verbs: ['exec', 'attach'],
    commands: [
      ['ls', '-l', '/data'],
      ['cat', '/data/config.yaml'],
    ],
    maxSessions: 3,
  },
  requestedBy: 'user:alice',
  decidedBy: 'user:alice',
  reason: 'INC-4211: inspect the data volume',
  ttlSeconds: 600,
  createdAt: '2025-06-02T09:20:00.000Z',
  decidedAt: '2025-06-02T09:20:00.000Z',
  expiresAt: '2025-06-02T09:30:00.000Z',
  decisions: [
    { kind: 'granted', by: 'user:alice', at: '2025-06-02T09:20:00.000Z', reason: 'INC-4211: inspect the data volume', ttlSeconds: 600, expiresAt: '2025-06-02T09:30:00.000Z' },
  ],
  sessionsStarted: 1,
  request: null,
};

/** A held REST request, denied. */
export const DENIED_REST: Approval = {
  ...base,
  id: 'apr_d2e3f4g5h6j7k2m3n4pa',
  state: 'denied',
  scope: {
    kind: 'rest',
    verb: 'get',
    resource: 'secrets',
    namespace: 'demo',
    name: 'db-password',
    request: { method: 'GET', path: '/api/v1/namespaces/demo/secrets/db-password', query: '', bodySha256: null, contentType: null, contentEncoding: null },
    maxUses: 1,
  },
  requestedBy: 'agent:claude',
  decidedBy: 'user:bob',
  reason: 'not during the freeze',
  ttlSeconds: 900,
  createdAt: '2025-06-02T11:00:00.000Z',
  decidedAt: '2025-06-02T11:01:30.000Z',
  expiresAt: null,
  decisions: [{ kind: 'denied', by: 'user:bob', at: '2025-06-02T11:01:30.000Z', reason: 'not during the freeze', ttlSeconds: null, expiresAt: null }],
  request: { method: 'GET', path: '/api/v1/namespaces/demo/secrets/db-password', client: '10.0.4.17:52990', rule: 'secrets-need-approval', policyHash: EXAMPLE_POLICY.hash },
};

/** A REST grant, revoked. */
export const REVOKED_REST: Approval = {
  ...base,
  id: 'apr_c4d5e6f7g2h3j4k5m6na',
  state: 'revoked',
  scope: { kind: 'rest', verb: 'delete', resource: 'namespaces', namespace: '', name: 'demo' },
  requestedBy: 'user:alice',
  decidedBy: 'user:alice',
  reason: 'tear down the demo',
  ttlSeconds: 3600,
  createdAt: '2025-06-02T10:00:00.000Z',
  decidedAt: '2025-06-02T10:00:00.000Z',
  expiresAt: '2025-06-02T11:00:00.000Z',
  revokedAt: '2025-06-02T10:05:12.345Z',
  revokedBy: 'user:bob',
  decisions: [
    { kind: 'granted', by: 'user:alice', at: '2025-06-02T10:00:00.000Z', reason: 'tear down the demo', ttlSeconds: 3600, expiresAt: '2025-06-02T11:00:00.000Z' },
    { kind: 'revoked', by: 'user:bob', at: '2025-06-02T10:05:12.345Z', reason: 'change window closed early', ttlSeconds: null, expiresAt: null },
  ],
  request: null,
};

/** A `kubectl port-forward` held for approval: kubectl names its ports only inside the stream, so its approver names them. */
export const PENDING_FORWARD: Approval = {
  ...base,
  id: 'apr_f2w3d4p5q6r7s2t3v4wa',
  state: 'pending',
  scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] },
  requestedBy: 'agent:claude',
  decidedBy: null,
  reason: null,
  ttlSeconds: 900,
  createdAt: '2025-06-02T09:50:00.000Z',
  decidedAt: null,
  expiresAt: '2025-06-02T09:55:00.000Z',
  decisions: [],
  request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/portforward', client: '10.0.4.17:53377', rule: 'portforward-needs-approval', policyHash: EXAMPLE_POLICY.hash },
};

/** A direct port-forward grant to the pod's port 8080, one session started. */
export const APPROVED_FORWARD: Approval & { scope: StreamScope } = {
  ...base,
  id: 'apr_g2h3j4k5m6n7p2q3r4sa',
  state: 'approved',
  scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080] },
  requestedBy: 'user:alice',
  decidedBy: 'user:alice',
  reason: 'INC-4212: the admin page on 8080',
  ttlSeconds: 600,
  createdAt: '2025-06-02T10:10:00.000Z',
  decidedAt: '2025-06-02T10:10:00.000Z',
  expiresAt: '2025-06-02T10:20:00.000Z',
  decisions: [
    { kind: 'granted', by: 'user:alice', at: '2025-06-02T10:10:00.000Z', reason: 'INC-4212: the admin page on 8080', ttlSeconds: 600, expiresAt: '2025-06-02T10:20:00.000Z' },
  ],
  sessionsStarted: 1,
  request: null,
};

export const EXAMPLE_APPROVALS = [PENDING_EXEC, APPROVED_STREAM, DENIED_REST, REVOKED_REST, PENDING_REST, PENDING_FORWARD, APPROVED_FORWARD] as const;

/** The recorded exec session under APPROVED_STREAM: its cast and raw bytes (the hashes below are theirs). */
export const EXAMPLE_CAST = '{"version":2,"width":80,"height":24,"timestamp":1748855660}\n[0.1,"o","total 0\\r\\n"]\n';
export const EXAMPLE_RAW = 'total 0\n';

export const ENDED_SESSION = {
  id: 'ses_q4n7b2x6k3m5p7r2t5vz',
  approvalId: APPROVED_STREAM.id,
  agent: EXAMPLE_AGENT,
  agentId: EXAMPLE_AGENT_ID,
  state: 'ended',
  operation: 'exec',
  transport: 'websocket',
  protocol: 'v5.channel.k8s.io',
  upstreamProtocol: 'v5.channel.k8s.io',
  namespace: 'demo',
  pod: 'web-0',
  container: 'app',
  command: ['ls', '-l', '/data'],
  tty: false,
  client: '10.0.4.17:53120',
  startedAt: '2025-06-02T09:21:00.000Z',
  endedAt: '2025-06-02T09:21:01.250Z',
  endReason: 'completed',
  exitCode: 0,
  status: { metadata: {}, status: 'Success' },
  bytesIn: 0,
  bytesOut: 8,
  castPath: '/var/lib/kube-bastion/recordings/apr_b7c2d3f4g5h6j7k3m6na/ses_q4n7b2x6k3m5p7r2t5vz.cast',
  castSha256: 'f6fbbcee0315c7f85f54e729a035a3a06301993cdb07bd63c0191b39d5500625',
  rawPath: '/var/lib/kube-bastion/recordings/apr_b7c2d3f4g5h6j7k3m6na/ses_q4n7b2x6k3m5p7r2t5vz.raw',
  rawSha256: 'bf22d9341614e23448d92045f9ada00f2d62b00491261ec5843adca20e5a4b3a',
  channelSha256: { stdout: 'bf22d9341614e23448d92045f9ada00f2d62b00491261ec5843adca20e5a4b3a' },
  files: null,
  sha256: {
    cast: 'f6fbbcee0315c7f85f54e729a035a3a06301993cdb07bd63c0191b39d5500625',
    raw: 'bf22d9341614e23448d92045f9ada00f2d62b00491261ec5843adca20e5a4b3a',
    stdin: null,
    stdout: 'bf22d9341614e23448d92045f9ada00f2d62b00491261ec5843adca20e5a4b3a',
    stderr: null,
  },
} as const;

/** The bytes of FORWARD_SESSION's first connection, each way (its raw sidecar is written by the example world). */
export const EXAMPLE_FORWARD_IN = 'GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n';
export const EXAMPLE_FORWARD_OUT = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n';
/** What the world stores as that connection's raw sidecar (a stand-in: the bytes are only hashed and served). */
export const EXAMPLE_FORWARD_RAW = EXAMPLE_FORWARD_IN + EXAMPLE_FORWARD_OUT;
const sha256Hex = (b: string): string => createHash('sha256').update(b).digest('hex');

/** The port-forward session under APPROVED_FORWARD: one HTTP connection to 8080, one to 5432 refused. */
export const FORWARD_SESSION = {
  id: 'ses_f2w3d4p5q6r7s2t3v4wz',
  approvalId: APPROVED_FORWARD.id,
  agent: EXAMPLE_AGENT,
  agentId: EXAMPLE_AGENT_ID,
  state: 'ended',
  operation: 'portforward',
  transport: 'websocket',
  protocol: 'SPDY/3.1+portforward.k8s.io',
  upstreamProtocol: 'portforward.k8s.io',
  namespace: 'demo',
  pod: 'web-0',
  container: '',
  command: [],
  tty: false,
  client: '10.0.4.17:53410',
  startedAt: '2025-06-02T10:11:00.000Z',
  endedAt: '2025-06-02T10:12:30.000Z',
  endReason: 'client-closed',
  exitCode: null,
  status: null,
  bytesIn: EXAMPLE_FORWARD_IN.length,
  bytesOut: EXAMPLE_FORWARD_OUT.length,
  castPath: null,
  castSha256: null,
  rawPath: null,
  rawSha256: null,
  channelSha256: null,
  files: null,
  sha256: { cast: null, raw: null, stdin: null, stdout: null, stderr: null },
  connections: [
    {
      sessionId: 'ses_f2w3d4p5q6r7s2t3v4wz',
      seq: 1,
      port: 8080,
      startedAt: '2025-06-02T10:11:02.000Z',
      endedAt: '2025-06-02T10:11:02.120Z',
      outcome: 'closed',
      detail: null,
      bytesIn: EXAMPLE_FORWARD_IN.length,
      bytesOut: EXAMPLE_FORWARD_OUT.length,
      sha256In: sha256Hex(EXAMPLE_FORWARD_IN),
      sha256Out: sha256Hex(EXAMPLE_FORWARD_OUT),
      rawPath: 'apr_g2h3j4k5m6n7p2q3r4sa/ses_f2w3d4p5q6r7s2t3v4wz.c1.raw',
      rawSha256: sha256Hex(EXAMPLE_FORWARD_RAW),
      protocol: 'http/1.x',
    },
    {
      sessionId: 'ses_f2w3d4p5q6r7s2t3v4wz',
      seq: 2,
      port: 5432,
      startedAt: '2025-06-02T10:11:40.000Z',
      endedAt: '2025-06-02T10:11:40.000Z',
      outcome: 'refused',
      detail: 'port 5432 is not among the ports approval apr_g2h3j4k5m6n7p2q3r4sa allows (8080)',
      bytesIn: 0,
      bytesOut: 0,
      sha256In: null,
      sha256Out: null,
      rawPath: null,
      rawSha256: null,
      protocol: null,
    },
  ],
} as const;

// Around the port-forward relay, through the built CLI against a real bastion: a grant names its
// pod ports; a held port-forward (a pending approval as the endpoint makes it: the pod, no ports) is
// approved with --ports; a port-forward session's forwarded connections (rows fabricated in the
// bastion's store, raw sidecars written under its recordings directory, as the relay will) are
// shown by `sessions show`, listed in the review record, exported with their sidecars and verified.
// The relay itself is not exercised here (see sim-portforward.test.ts for the simulator's side).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import type { Approval } from '../../src/model/approval.js';
import { ReviewRecordSchema } from '../../src/model/review-record-schema.js';
import { scopeFor, portForwardOperation } from '../../src/approvals/operation.js';
import type { ResourceRequest } from '../../src/model/request.js';

let b: TestBastion;
let ann: string;
let agent: { id: string; name: string };

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

beforeAll(async () => {
  expect(existsSync('dist/cli/main.js'), 'run `npm run build` first').toBe(true);
  b = await startTestBastion();
  ann = (await b.bastion.store.users.createUser('ann', 'approver')).token;
  const a = (await b.bastion.store.agents.getAgentByName(b.agentName))!;
  agent = { id: a.id, name: a.name };
});
afterAll(async () => {
  await b?.stop();
});

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // The trust file (pinned keys) lives in a config directory of this test's own.
    execFile(process.execPath, [resolve('bin/kube-bastion.js'), ...args], { env: { ...process.env, KUBE_BASTION_URL: b.bastion.controlUrl, KUBE_BASTION_TOKEN: ann, XDG_CONFIG_HOME: join(b.dir, 'config') } }, (err, stdout, stderr) =>
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('port-forward approvals and records through the CLI', () => {
  it('grant --verbs portforward needs --ports and names no container', async () => {
    const base = ['approvals', 'grant', '--agent', b.agentName, '--namespace', 'demo', '--pod', 'web-0', '--verbs', 'portforward', '--ttl', '10m', '--reason', 'INC-1'];
    const refused = await cli(...base);
    expect(refused).toMatchObject({ code: 1, stderr: 'kube-bastion approvals: ports is required: a port-forward grant names the pod ports it may reach (--ports)\n' });
    const granted = await cli(...base, '--ports', '8080', '-o', 'json');
    expect(granted.code).toBe(0);
    expect((JSON.parse(granted.stdout) as Approval).scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080] });
  });

  it('a held port-forward is approved with --ports; its connections are shown, recorded, exported and verified', async () => {
    // What the endpoint asks for a kubectl port-forward over SPDY or the tunnel: the pod, no ports.
    const scope = scopeFor(portForwardOperation({ namespace: 'demo', name: 'web-0' } as ResourceRequest));
    const { approval: held } = await b.bastion.approvals.requestOrJoin({
      agent,
      scope,
      request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/portforward', client: '127.0.0.1:40000' },
      holdSeconds: 60,
    });
    expect((await cli('approvals', 'approve', held.id)).stderr).toBe('kube-bastion approvals: ports is required: name the pod ports this port-forward may reach (--ports)\n');
    const approved = await cli('approvals', 'approve', held.id, '--ports', '8080', '--reason', 'the admin page');
    expect(approved.code).toBe(0);
    expect(approved.stdout).toContain(`approval ${held.id} approved: portforward web-0 -n demo ports=8080 for agent ${b.agentName}`);

    // The session and its connections as the relay will write them (one let through, one refused).
    const store = b.bastion.store;
    const session = await store.sessions.start({
      approvalId: held.id,
      agent,
      operation: 'portforward',
      transport: 'websocket',
      protocol: 'SPDY/3.1+portforward.k8s.io',
      namespace: 'demo',
      pod: 'web-0',
      container: '',
      command: [],
      tty: false,
      client: '127.0.0.1:40001',
    });
    const recordings = join(b.dir, 'recordings');
    const rawPath = join(held.id, `${session.id}.1.raw`);
    const sent = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const got = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    mkdirSync(join(recordings, held.id), { recursive: true });
    writeFileSync(join(recordings, rawPath), sent + got);
    const now = new Date().toISOString();
    await store.sessions.connectionStarted({ sessionId: session.id, seq: 1, port: 8080, startedAt: now, rawPath });
    await store.sessions.connectionEnded(session.id, 1, { endedAt: now, outcome: 'closed', detail: null, bytesIn: sent.length, bytesOut: got.length, sha256In: sha(sent), sha256Out: sha(got), rawSha256: sha(sent + got), protocol: 'http/1.x' });
    const told = 'port 5432 is not among the ports the approval allows (8080)';
    await store.sessions.connectionStarted({ sessionId: session.id, seq: 2, port: 5432, startedAt: now, rawPath: null });
    await store.sessions.connectionEnded(session.id, 2, { endedAt: now, outcome: 'refused', detail: told, bytesIn: 0, bytesOut: 0, sha256In: null, sha256Out: null, rawSha256: null, protocol: null });
    await store.sessions.end(session.id, { endReason: 'client-closed', exitCode: null, status: null, bytesIn: sent.length, bytesOut: got.length });

    const shown = await cli('sessions', 'show', session.id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`\\n {2}1\\s+8080\\s+\\S+\\s+\\S+\\s+closed\\s+${sent.length}\\s+${got.length}\\s+http/1\\.x\\n`));
    expect(shown.stdout).toContain(`      refused, outside the approved ports: ${told}\n`);

    const record = await cli('record', held.id, '-o', 'json');
    const r = ReviewRecordSchema.parse(JSON.parse(record.stdout));
    expect(r.sessions[0]!.connections!.map((c) => [c.port, c.outcome, c.inScope])).toEqual([
      [8080, 'closed', true],
      [5432, 'refused', false],
    ]);
    expect(r.conformance.verdict).toBe('inside-scope');

    const out = join(mkdtempSync(join(tmpdir(), 'kb-forward-')), 'evidence');
    expect((await cli('export', '--approval', held.id, '--out', out, '--quiet')).code).toBe(0);
    expect(readFileSync(join(out, 'sessions', session.id, '1.raw'), 'utf8')).toBe(sent + got);
    expect((await cli('verify', out, '--fingerprint', b.bastion.signingKey.fingerprint)).code).toBe(0);
    // One changed byte of the connection's sidecar: verify names it.
    appendFileSync(join(out, 'sessions', session.id, '1.raw'), 'x');
    const bad = await cli('verify', out);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`^MISMATCH sessions/${session.id}/1\\.raw: `, 'm'));
  });
});

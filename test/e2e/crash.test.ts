// kill -9 of `serve` during a live session: after a restart the session is marked interrupted and
// its recording is whole and parses. The cluster runs as its own process so only the bastion dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
import { createApprover } from '../helpers/control.js';
import { INTERRUPTED_MARKER, parseCast } from '../../src/recording/index.js';
import { openStore } from '../../src/store/index.js';
import { readRawSidecar } from '../../src/recording/raw-sidecar.js';
import { INTERRUPTED_CONNECTION } from '../../src/session/recovery.js';
import { kubectlPortForward, sha256, stopForward } from '../helpers/portforward.js';
import { connect } from 'node:net';
import https from 'node:https';
import { spawnSync } from 'node:child_process';
import { parse as parseYaml } from 'yaml';

const BIN = resolve('bin/kube-bastion.js');
const children: ChildProcess[] = [];

function start(args: string[], ready: RegExp): Promise<{ child: ChildProcess; out: () => string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', () => {});
  return new Promise((resolveStart, reject) => {
    const deadline = setTimeout(() => reject(new Error(`not ready: ${out}`)), 30_000);
    const check = setInterval(() => {
      if (ready.test(out)) {
        clearTimeout(deadline);
        clearInterval(check);
        resolveStart({ child, out: () => out });
      }
    }, 50);
  });
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
});

interface Pair {
  dir: string;
  serveArgs: string[];
  first: { child: ChildProcess; out: () => string };
  agentConfig: string;
  /** Grants `body` (plus agent, ttl and reason) to the agent; returns the approval id. */
  grant(body: Record<string, unknown>): Promise<string>;
}

/** A sim in its own process, a bastion in front of it, an agent `crashy` and an approver. */
async function startPair(): Promise<Pair> {
  expect(existsSync('dist/cli/main.js'), 'run `npm run build` first').toBe(true);
  const dir = mkdtempSync(join(tmpdir(), 'kb-crash-'));
  const simConfig = join(dir, 'sim.kubeconfig');
  await start(['sim', '--listen', '127.0.0.1:0', '--kubeconfig-out', simConfig, '--work-dir', join(dir, 'pods')], /kubeconfig:/);
  const serveArgs = ['serve', '--data-dir', join(dir, 'data'), '--recordings', join(dir, 'rec'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', '--upstream-kubeconfig', simConfig];
  const first = await start(serveArgs, /admin token/);
  const control = /control API:\s+(http:\/\/\S+)\/v1/.exec(first.out())![1]!;
  const admin = /admin token[^:]*: (kbu_\S+)/.exec(first.out())![1]!;
  const url = /Kubernetes endpoint: (https:\/\/\S+)/.exec(first.out())![1]!;
  const agentConfig = join(dir, 'agent.kubeconfig');
  const add = spawn(process.execPath, [BIN, 'agent', 'add', 'crashy', '--data-dir', join(dir, 'data'), '--server', url, '--kubeconfig-out', agentConfig]);
  expect(await new Promise((r) => add.on('exit', r))).toBe(0);
  // The admin owns the agent it made and may not grant to it: another approver grants.
  const approverToken = await createApprover(control, admin);
  const grant = async (body: Record<string, unknown>): Promise<string> => {
    const res = await fetch(`${control}/v1/approvals`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${approverToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ agent: 'crashy', ttlSeconds: 300, reason: 'crash test', ...body }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  return { dir, serveArgs, first, agentConfig, grant };
}

async function killFirst(pair: Pair): Promise<void> {
  pair.first.child.kill('SIGKILL');
  await new Promise((r) => pair.first.child.on('exit', r));
}

describe('a bastion killed during a session', () => {
  it('marks the session interrupted after restart, and its cast parses', async () => {
    const pair = await startPair();
    const { dir, serveArgs, agentConfig } = pair;
    const approvalId = await pair.grant({ namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] });

    const kubectl = spawn(kubectlPath(33), ['--kubeconfig', agentConfig, 'exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'while :; do echo tick; sleep 0.05; done'], {
      env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
    });
    children.push(kubectl);
    // Listened for now: kubectl may exit while the bastion's own exit is awaited.
    const kubectlExited = new Promise((r) => kubectl.once('exit', r));
    let ticks = '';
    kubectl.stdout.on('data', (d: Buffer) => (ticks += d.toString()));
    await expect.poll(() => ticks.split('tick').length, { timeout: 15_000 }).toBeGreaterThan(5);

    await killFirst(pair);
    await kubectlExited;

    const second = await start(serveArgs, /kube-bastion is serving/);
    const store = openStore(join(dir, 'data'));
    try {
      const [session] = await store.sessions.list({ approvalId });
      expect(session).toMatchObject({ state: 'ended', endReason: 'interrupted' });
      const cast = parseCast(readFileSync(session!.castPath!, 'utf8'));
      expect(cast.events.some((e) => e.code === 'o' && e.data.includes('tick'))).toBe(true);
      expect(cast.events.at(-1)).toMatchObject({ code: 'm', data: INTERRUPTED_MARKER });
      expect(session!.castSha256).toMatch(/^[0-9a-f]{64}$/);
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
    }
  });

  it('killed as sessions end (their end rows are group-committed): each is ended, completed or interrupted, with hashes equal to its files, and audit verify passes', async () => {
    const pair = await startPair();
    const { dir, serveArgs, agentConfig } = pair;
    const approvalId = await pair.grant({ namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] });
    // Several sessions that end together: the kill lands as their end rows wait for the group commit.
    const runs = Array.from({ length: 6 }, () => {
      const k = spawn(kubectlPath(33), ['--kubeconfig', agentConfig, 'exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo started; sleep 2; echo done'], { env: { PATH: process.env.PATH ?? '', HOME: freshHome() } });
      children.push(k);
      let out = '';
      k.stdout.on('data', (d: Buffer) => (out += d.toString()));
      return { out: () => out, exited: new Promise<void>((r) => k.once('exit', () => r())) };
    });
    await expect.poll(() => runs.every((r) => r.out().includes('started')), { timeout: 20_000 }).toBe(true);
    await Promise.race(runs.map((r) => r.exited));
    await killFirst(pair);
    await Promise.all(runs.map((r) => r.exited));

    const second = await start(serveArgs, /kube-bastion is serving/);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
    const store = openStore(join(dir, 'data'));
    try {
      const sessions = await store.sessions.list({ approvalId });
      expect(sessions).toHaveLength(6);
      for (const session of sessions) {
        expect(session.state).toBe('ended');
        expect(['completed', 'interrupted']).toContain(session.endReason);
        expect(session.castSha256).toBe(sha256(readFileSync(session.castPath!)));
        expect(session.rawSha256).toBe(sha256(readFileSync(session.rawPath!)));
        const ends = await store.audit.query({ event: 'session.end', sessionId: session.id });
        expect(ends.map((r) => (JSON.parse(r.details ?? '{}') as { endReason: string }).endReason)).toEqual([session.endReason]);
      }
    } finally {
      await store.close();
    }
    const verified = auditVerify(join(dir, 'data'));
    expect(verified.stdout).toMatch(/^audit log OK/m);
    expect(verified.status).toBe(0);
  });

  it('a port-forward: its open connection ends cut as interrupted, with the bytes and hashes its sidecar holds', async () => {
    const pair = await startPair();
    const approvalId = await pair.grant({ namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [7000] });
    const fwd = await kubectlPortForward({ minor: 33, kubeconfig: pair.agentConfig, ports: [7000] });
    children.push(fwd.child);
    const socket = connect({ host: '127.0.0.1', port: fwd.local.get(7000)! });
    socket.on('error', () => {});
    let echoed = '';
    socket.on('data', (d: Buffer) => (echoed += d.toString()));
    socket.write('before the crash');
    await expect.poll(() => echoed, { timeout: 15_000 }).toBe('before the crash');
    // The connection's sidecar is written in batches: within the batch window (100 ms) of being
    // relayed, the bytes are in the file (what a kill -9 cannot lose; an fsync is for power loss).
    const sidecar = join(pair.dir, 'rec', approvalId, readdirSync(join(pair.dir, 'rec', approvalId)).find((f) => f.endsWith('.c1.raw'))!);
    const held = (ch: number): string => Buffer.concat(readRawSidecar(readFileSync(sidecar)).records.filter((r) => r.channel === ch).map((r) => r.data)).toString();
    await expect.poll(() => [held(0), held(1)], { timeout: 2_000, interval: 20 }).toEqual(['before the crash', 'before the crash']);

    await killFirst(pair);
    socket.destroy();
    await stopForward(fwd);

    const second = await start(pair.serveArgs, /kube-bastion is serving/);
    const store = openStore(join(pair.dir, 'data'));
    try {
      const [session] = await store.sessions.list({ approvalId });
      expect(session).toMatchObject({ state: 'ended', endReason: 'interrupted', operation: 'portforward' });
      const [conn] = await store.sessions.listConnections(session!.id);
      expect(conn).toMatchObject({
        port: 7000,
        outcome: 'cut',
        detail: INTERRUPTED_CONNECTION,
        bytesIn: 16,
        bytesOut: 16,
        sha256In: sha256(Buffer.from('before the crash')),
        sha256Out: sha256(Buffer.from('before the crash')),
      });
      expect(conn!.rawSha256).toBe(sha256(readFileSync(join(pair.dir, 'rec', conn!.rawPath!))));
      const audit = await store.audit.query({ event: 'session.connection', sessionId: session!.id });
      expect(audit.map((r) => (JSON.parse(r.details ?? '{}') as { outcome: string }).outcome)).toEqual(['cut']);
    } finally {
      await store.close();
      second.child.kill('SIGTERM');
    }
  });
});

/** The agent's server, CA and token, from its kubeconfig. */
function agentOf(kubeconfig: string): { server: string; ca: string; token: string } {
  const k = parseYaml(readFileSync(kubeconfig, 'utf8')) as { clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>; users: Array<{ user: { token: string } }> };
  return { server: k.clusters[0]!.cluster.server, ca: Buffer.from(k.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString(), token: k.users[0]!.user.token };
}

/** One GET on a keep-alive connection; resolves with the status once the whole answer arrived. */
function get(agent: https.Agent, a: ReturnType<typeof agentOf>, path: string): Promise<number> {
  return new Promise((resolveGet, reject) => {
    const req = https.get(`${a.server}${path}`, { agent, ca: a.ca, headers: { Authorization: `Bearer ${a.token}` } }, (res) => {
      res.resume();
      // A bastion killed mid-answer ends the response without 'end': only 'close' tells.
      res.on('close', () => (res.complete ? resolveGet(res.statusCode ?? 0) : reject(new Error('the answer was cut off'))));
    });
    req.on('error', reject);
  });
}

const auditVerify = (dataDir: string) => spawnSync(process.execPath, [BIN, 'audit', 'verify', '--data-dir', dataDir], { encoding: 'utf8' });

/** The `i` of each audited read of `?labelSelector=i%3D<i>`, in chain order. */
async function auditedReads(dataDir: string): Promise<number[]> {
  const store = openStore(dataDir);
  try {
    const rows = await store.audit.query({ event: 'request', resource: 'pods', namespace: 'demo', limit: 10_000 });
    return rows.flatMap((r) => {
      const m = /labelSelector=i%3D(\d+)$/.exec(r.path ?? '');
      return m ? [Number(m[1])] : [];
    });
  } finally {
    await store.close();
  }
}

describe('a bastion killed right after allowed reads (their rows are group-committed)', () => {
  it('reads answered more than the window (50 ms) before the kill are all in the log, one row each, and audit verify passes', async () => {
    const pair = await startPair();
    const a = agentOf(pair.agentConfig);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 40; i++) expect(await get(agent, a, `/api/v1/namespaces/demo/pods?labelSelector=i%3D${i}`)).toBe(200);
    agent.destroy();
    await new Promise((r) => setTimeout(r, 300));
    await killFirst(pair);
    const dataDir = join(pair.dir, 'data');
    expect(await auditedReads(dataDir)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const verify = auditVerify(dataDir);
    expect(verify.stdout).toMatch(/^audit log OK: \d+ rows, head [0-9a-f]{64}$/m);
    expect(verify.status).toBe(0);
  });

  it('killed while reads are answered: what is lost is a tail of the reads answered last (within the window); the chain and its checkpoints still verify', async () => {
    const pair = await startPair();
    const a = agentOf(pair.agentConfig);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    let answered = 0;
    let stop = false;
    const reading = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          if ((await get(agent, a, `/api/v1/namespaces/demo/pods?labelSelector=i%3D${i}`)) === 200) answered = i + 1;
        } catch {
          return; // the bastion died
        }
      }
    })();
    await expect.poll(() => answered, { timeout: 15_000 }).toBeGreaterThan(100);
    await killFirst(pair);
    stop = true;
    await reading;
    agent.destroy();
    const dataDir = join(pair.dir, 'data');
    const audited = await auditedReads(dataDir);
    // A prefix of the reads, in order, with no hole: only the last ones can be missing.
    expect(audited).toEqual(Array.from({ length: audited.length }, (_, i) => i));
    expect(audited.length).toBeLessThanOrEqual(answered);
    expect(audited.length).toBeGreaterThan(0);
    const verify = auditVerify(dataDir);
    expect(verify.stdout).toMatch(/^audit log OK: \d+ rows, head [0-9a-f]{64}$/m);
    expect(verify.status).toBe(0);
    // And a restart carries on from the committed head.
    const second = await start(pair.serveArgs, /kube-bastion is serving/);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.on('exit', r));
    expect(auditVerify(dataDir).status).toBe(0);
  });
});

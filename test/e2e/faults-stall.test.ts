// Fault suite, part 5: an event-loop stall across an approval's expiry. A loaded bastion can sit in
// one long task (a GC pause, a big batch of I/O) while its expiry timer comes due; whatever the
// upstream sent meanwhile is read in the same turn, before that timer runs. Nothing created after
// expiresAt may reach the client all the same. The simulated cluster and the writer of the
// late objects run as their own processes, so they keep going while the bastion's process stalls.
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { api, isoToNs, pendingApproval, requestRows, stamps, startKubectl, ticker, until } from '../helpers/faults.js';
import type { Approval } from '../../src/model/approval.js';

const BIN = resolve('bin/kube-bastion.js');
const children: ChildProcess[] = [];
let b: TestBastion;
let alice: string;
let upstream: { server: string; ca: string; token: string };

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kb-stall-'));
  const simConfig = join(dir, 'sim.kubeconfig');
  const sim = spawn(process.execPath, [BIN, 'sim', '--listen', '127.0.0.1:0', '--kubeconfig-out', simConfig, '--work-dir', join(dir, 'pods')], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(sim);
  let out = '';
  sim.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await until('the simulated cluster', () => out.includes('kubeconfig:'), 30_000);
  const kc = parse(readFileSync(simConfig, 'utf8')) as { clusters: Array<{ cluster: { server: string; 'certificate-authority-data': string } }>; users: Array<{ user: { token: string } }> };
  upstream = { server: kc.clusters[0]!.cluster.server, ca: Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString(), token: kc.users[0]!.user.token };
  b = await startTestBastion({ extraArgs: ['--upstream-kubeconfig', simConfig] });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
});

/** A separate process that creates secrets `<prefix>-<epoch ms>` in demo at the given instants (after one warm-up request). */
function createSecretsAt(prefix: string, instants: number[]): Promise<void> {
  const script = `
    const https = require('node:https');
    const [server, ca, token, prefix, instants] = JSON.parse(process.argv[1]);
    const agent = new https.Agent({ keepAlive: true, ca });
    const create = (name) => new Promise((done) => {
      const req = https.request(server + '/api/v1/namespaces/demo/secrets', { method: 'POST', agent, headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' } }, (res) => { res.resume(); res.on('end', done); });
      req.on('error', done);
      req.end(JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'demo' }, type: 'Opaque' }));
    });
    create(prefix + '-warmup').then(() => {
      let left = instants.length;
      for (const at of instants) setTimeout(() => create(prefix + '-' + Date.now()).then(() => { if (--left === 0) process.exit(0); }), at - Date.now());
    });`;
  const child = spawn(process.execPath, ['-e', script, JSON.stringify([upstream.server, upstream.ca, upstream.token, prefix, instants])], { stdio: 'inherit' });
  children.push(child);
  return new Promise((done) => child.on('exit', () => done()));
}

/** Blocks this process (the bastion's) from `from` to `to`, epoch ms. */
function stallBetween(from: number, to: number): Promise<void> {
  return new Promise((done) =>
    setTimeout(() => {
      while (Date.now() < to) {
        // the stall
      }
      done();
    }, Math.max(0, from - Date.now())),
  );
}

describe('an event-loop stall across the expiry of a watch approval', () => {
  it('delivers nothing created after expiresAt; the watch ends with the ERROR event', async () => {
    const { status, json: watch } = await api<Approval>(b, alice, 'POST', '/v1/approvals', { agent: b.agentName, verb: 'watch', resource: 'secrets', namespace: 'demo', ttlSeconds: 3, reason: 'stall drill' });
    expect(status).toBe(201);
    const deadline = Date.parse(watch.expiresAt!);
    const url = new URL(b.bastion.kubeUrl);
    let body = '';
    const ended = new Promise<void>((done, fail) => {
      const req = https.get(
        { host: url.hostname, port: url.port, path: '/api/v1/namespaces/demo/secrets?watch=true', ca: b.bastion.tls.caPem, headers: { Authorization: `Bearer ${b.agentToken}` } },
        (res) => {
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', done);
          res.on('error', fail);
        },
      );
      req.on('error', fail);
    });
    await until('the watch to be open', () => body.includes('db-credentials'));
    // One secret well before the deadline, then two while this process is stalled across it.
    const writer = createSecretsAt('stall', [deadline - 1000, deadline + 20, deadline + 40]);
    await until('the early secret', () => /stall-\d{13}/.test(body), 10_000);
    await stallBetween(deadline - 80, deadline + 150);
    await ended;
    await writer;
    const lines = body.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata?: { name?: string }; message?: string } });
    const names = lines.filter((l) => l.type === 'ADDED').map((l) => l.object.metadata!.name!);
    const late = names.filter((n) => /^stall-\d{13}$/.test(n) && Number(n.slice('stall-'.length)) > deadline);
    expect(late).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ type: 'ERROR', object: { message: expect.stringContaining(`approval ${watch.id} expired at ${watch.expiresAt}`) } });
    const row = await until('the watch row', async () => (await requestRows(b, { approvalId: watch.id })).find((r) => r.outcome));
    expect(row.outcome).toBe('expired');
  });
});

describe.each([
  { label: 'kubectl 1.27 (SPDY)', minor: 27 },
  { label: 'kubectl 1.33 (WebSocket)', minor: 33 },
])('an event-loop stall across the expiry of a session, $label', ({ minor }) => {
  it('relays no timestamp the pod printed after expiresAt; the session ends expired', async () => {
    const tag = `stall-session-${minor}`;
    const run = startKubectl(minor, b.agentKubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker(tag)]);
    const pending = await pendingApproval(b, (a) => JSON.stringify(a.scope).includes(tag));
    const approved = await api<Approval>(b, alice, 'POST', `/v1/approvals/${pending.id}/approve`, { ttlSeconds: 3 });
    expect(approved.status).toBe(200);
    const deadline = Date.parse(approved.json.expiresAt!);
    await until('ticks at kubectl', () => stamps(run.stdout()).length >= 5);
    // The pod (another process) keeps ticking while this one stalls across the deadline.
    await stallBetween(deadline - 80, deadline + 150);
    const r = await run.done;
    expect(stamps(r.stdout).filter((t) => t > isoToNs(approved.json.expiresAt!))).toEqual([]);
    expect(r.stderr).toContain(`approval ${pending.id} expired at ${approved.json.expiresAt}`);
    const [session] = await until('the session ended', async () => {
      const rows = (await b.bastion.store.sessions.list({ approvalId: pending.id })).filter((x) => x.state === 'ended');
      return rows.length > 0 ? rows : undefined;
    });
    expect(session).toMatchObject({ endReason: 'expired' });
  });
});

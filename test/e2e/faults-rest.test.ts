// Fault suite, part 2: what outlives an approval or an agent. A watch on secrets (which needs an
// approval by the default policy) gets nothing created after the approval's revocation or expiry
// and is closed; the agent's revocation ends its live sessions and watches within a second and
// revokes its approvals. Asserted from the outside: what kubectl and a raw client received, the
// session and audit rows, the approvals' states.
import https from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { api, grantExec, isoToNs, pendingApproval, requestRows, revoke, stamps, startKubectl, ticker, until } from '../helpers/faults.js';
import type { Approval } from '../../src/model/approval.js';
import type { Agent } from '../../src/store/index.js';
import { DEFAULT_POLICY_YAML } from '../../src/policy/default-policy.js';

/** The default policy plus one rule: exec into default/busybox passes without an approval (so only the agent's lease holds it). */
function policyFile(): string {
  const marker = '  - name: pod-streams-need-approval';
  const rule = ['  - name: busybox-exec-allowed', '    match: { streams: [exec], namespaces: [default], names: [busybox] }', '    action: allow', ''].join('\n');
  const file = join(mkdtempSync(join(tmpdir(), 'kb-fault-policy-')), 'policy.yaml');
  writeFileSync(file, DEFAULT_POLICY_YAML.replace(marker, `${rule}${marker}`));
  return file;
}

let b: TestBastion;
let alice: string;
let root: string;

beforeAll(async () => {
  b = await startTestBastion({ extraArgs: ['--policy', policyFile()] });
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
  root = (await b.bastion.store.users.createUser('root', 'admin')).token;
});
afterEach(async () => {
  for (const a of await b.bastion.approvals.list({ state: 'approved' })) await b.bastion.approvals.revoke(a.id, { kind: 'system', reason: 'end of case' }).catch(() => {});
});
afterAll(async () => {
  await b?.stop();
});

async function grantRest(verb: string, ttlSeconds: number, agent = b.agentName): Promise<Approval> {
  const { status, json } = await api<Approval>(b, alice, 'POST', '/v1/approvals', { agent, verb, resource: 'secrets', namespace: 'demo', ttlSeconds, reason: 'fault suite watch' });
  expect(status).toBe(201);
  return json;
}

/**
 * Creates a secret named `<prefix>-<epoch ms>` in demo every 20 ms until stopped: the name says when
 * it was created, so what a watcher received can be checked against the cutoff.
 */
function secretFactory(prefix: string): { stop(): void } {
  const timer = setInterval(() => {
    b.sim.store.create('secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: `${prefix}-${Date.now()}`, namespace: 'demo' }, type: 'Opaque', data: {} });
  }, 20);
  return { stop: () => clearInterval(timer) };
}

/** Creation times (epoch ms) of the factory's secrets named in some output. */
function created(out: string, prefix: string): number[] {
  return [...out.matchAll(new RegExp(`${prefix}-(\\d{13})`, 'g'))].map((m) => Number(m[1]));
}

const watchArgs = ['get', 'secrets', '-n', 'demo', '-w', '--request-timeout=0'];

async function watchRow(approvalId: string) {
  return until('the watch request row', async () => (await requestRows(b, { approvalId })).find((r) => r.verb === 'watch' && r.outcome !== null));
}

describe('a watch on secrets under an approval (kubectl 1.33)', () => {
  it('revoked: nothing created after revokedAt arrives, kubectl exits with the Status, the audit row says revoked', async () => {
    await grantRest('list', 300);
    const watch = await grantRest('watch', 300);
    const factory = secretFactory('rvk');
    try {
      const since = b.sim.requests.entries.length;
      const run = startKubectl(33, b.agentKubeconfig, watchArgs);
      // kubectl lists first, then watches: revoke once the watch itself delivers (its response has begun).
      await until('the watch delivering to kubectl', () => {
        const w = b.sim.requests.entries.slice(since).find((e) => e.path.startsWith('/api/v1/namespaces/demo/secrets?') && /[?&]watch=(1|true)/.test(e.path));
        const seen = created(run.stdout().toString(), 'rvk');
        return w !== undefined && seen.length >= 10 && seen.some((t) => t > Date.parse(w.time));
      });
      const revoked = await revoke(b, alice, watch.id, 'watch drill');
      const r = await run.done;
      // Keep creating a little longer: the closed watch must not deliver any of these.
      await new Promise((res) => setTimeout(res, 200));
      const seen = created(r.stdout.toString(), 'rvk');
      expect(seen.length).toBeGreaterThanOrEqual(10);
      expect(seen.filter((t) => t > Date.parse(revoked.revokedAt!))).toEqual([]);
      // kubectl prints the ERROR event's Status like any watched object (or as an error when the
      // cut came before the watch answered): either way it names the approval, who and why.
      expect(r.stdout.toString() + r.stderr).toContain(`approval ${watch.id} was revoked by user:alice (watch drill)`);
    } finally {
      factory.stop();
    }
    const row = await watchRow(watch.id);
    expect(row).toMatchObject({ outcome: 'revoked', decision: 'approval', statusCode: 200 });
  });

  it('expired: nothing created after expiresAt arrives and kubectl exits; the audit row says expired', async () => {
    await grantRest('list', 300);
    const factory = secretFactory('exp');
    try {
      const run = startKubectl(33, b.agentKubeconfig, watchArgs);
      // The watch is held for a decision, then approved for 2 s.
      const pending = await pendingApproval(b, (a) => a.scope.kind === 'rest' && a.scope.verb === 'watch');
      const approved = await api<Approval>(b, alice, 'POST', `/v1/approvals/${pending.id}/approve`, { ttlSeconds: 2 });
      expect(approved.status).toBe(200);
      const r = await run.done;
      await new Promise((res) => setTimeout(res, 200));
      const seen = created(r.stdout.toString(), 'exp');
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((t) => t > Date.parse(approved.json.expiresAt!))).toEqual([]);
      expect(r.stdout.toString() + r.stderr).toContain(`approval ${pending.id} expired at ${approved.json.expiresAt}`);
      const row = await watchRow(pending.id);
      expect(row).toMatchObject({ outcome: 'expired', decision: 'approval' });
    } finally {
      factory.stop();
    }
  });

  it('a raw watch client: the last line is an ERROR event with the Status, then the connection ends', async () => {
    const watch = await grantRest('watch', 300);
    const factory = secretFactory('raw');
    const url = new URL(b.bastion.kubeUrl);
    let body = '';
    let revokedAt = '';
    try {
      await new Promise<void>((resolve, reject) => {
        const req = https.get(
          { host: url.hostname, port: url.port, path: '/api/v1/namespaces/demo/secrets?watch=true', ca: b.bastion.tls.caPem, headers: { Authorization: `Bearer ${b.agentToken}` } },
          (res) => {
            expect(res.statusCode).toBe(200);
            res.on('data', (d: Buffer) => {
              body += d.toString();
              if (!revokedAt && created(body, 'raw').length >= 5) {
                revokedAt = 'pending';
                void revoke(b, alice, watch.id, 'raw watch drill').then((a) => (revokedAt = a.revokedAt!), reject);
              }
            });
            res.on('end', resolve);
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      });
    } finally {
      factory.stop();
    }
    await until('the revocation answer', () => revokedAt !== 'pending' && revokedAt);
    const lines = body.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: { metadata?: { name?: string }; message?: string } });
    const last = lines.at(-1)!;
    expect(last.type).toBe('ERROR');
    expect(last.object.message).toContain(`approval ${watch.id} was revoked by user:alice (raw watch drill)`);
    expect(lines.slice(0, -1).every((l) => l.type === 'ADDED')).toBe(true);
    expect(created(body, 'raw').filter((t) => t > Date.parse(revokedAt))).toEqual([]);
    const row = await watchRow(watch.id);
    expect(row.outcome).toBe('revoked');
  });
});

describe('agent revocation through the control API', () => {
  it("ends that agent's live sessions and watches within 1 s and revokes its approvals", async () => {
    const created = await api<{ agent: Agent; token: string; kubeconfig: string }>(b, root, 'POST', '/v1/agents', { name: 'doomed' });
    expect(created.status).toBe(201);
    const kubeconfig = join(b.dir, 'doomed.kubeconfig');
    writeFileSync(kubeconfig, created.json.kubeconfig);
    const spdyGrant = await grantExec(b, alice, 'shell-0', 'main', 300, 'doomed');
    const runs = [
      startKubectl(27, kubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker('doomed-spdy')]),
      startKubectl(33, kubeconfig, ['exec', '-n', 'demo', 'shell-0', '--', ...ticker('doomed-ws')]),
    ];
    // A session the policy allows without an approval: only the agent's revocation can end it.
    const unapproved = startKubectl(33, kubeconfig, ['exec', '-n', 'default', 'busybox', '--', ...ticker('doomed-free')]);
    // A pod watch passes by policy (no approval): only the agent's lease ends it.
    const podWatch = startKubectl(33, kubeconfig, ['get', 'pods', '-n', 'demo', '-w', '--request-timeout=0']);
    const unused = await grantExec(b, alice, 'web-0', 'app', 300, 'doomed');
    for (const run of [...runs, unapproved]) await until('ticks', () => stamps(run.stdout()).length >= 5);
    await until('the pod watch listing', () => podWatch.stdout().toString().includes('shell-0'));

    const res = await api<Agent>(b, root, 'POST', '/v1/agents/doomed/revoke');
    expect(res.status).toBe(200);
    const revokedAt = res.json.revokedAt!;
    const results = await Promise.all(runs.map((r) => r.done));
    const watchResult = await podWatch.done;
    const free = await unapproved.done;
    expect(free.code).not.toBe(0);
    expect(stamps(free.stdout).filter((t) => t > isoToNs(revokedAt))).toEqual([]);
    expect(free.stderr).toContain('kube-bastion ended the session under approval none: the agent was revoked by user:root');
    for (const r of results) {
      expect(r.code).not.toBe(0);
      expect(stamps(r.stdout).filter((s) => s > isoToNs(revokedAt))).toEqual([]);
      expect(r.stderr).toMatch(/agent "doomed" was revoked/);
    }
    expect(watchResult.stdout.toString() + watchResult.stderr).toContain('kube-bastion ended the response: the agent was revoked by user:root');

    const sessions = await until('the three sessions ended', async () => {
      const rows = await b.bastion.store.sessions.list({ agent: 'doomed' });
      return rows.length === 3 && rows.every((s) => s.state === 'ended') ? rows : undefined;
    });
    // The sessions under approvals end as those are revoked; the one without, as the agent is.
    expect(sessions.map((s) => `${s.pod} ${s.endReason}`).sort()).toEqual(['busybox agent-revoked', 'shell-0 revoked', 'shell-0 revoked']);
    for (const s of sessions) expect(Date.parse(s.endedAt!) - Date.parse(revokedAt)).toBeLessThan(1000);
    for (const id of [spdyGrant.id, unused.id]) expect((await b.bastion.approvals.get(id))!.state).toBe('revoked');
    const watchRows = await until('the pod watch row', async () => (await requestRows(b, { path: '/pods?' })).find((r) => r.agentName === 'doomed' && r.verb === 'watch' && r.outcome));
    expect(watchRows.outcome).toBe('agent-revoked');
  });
});

// `kube-bastion serve` and the admin commands as an operator runs them (the built CLI), with real
// kubectl: bootstrap output, metrics, agent/user creation, policy reload on SIGHUP, graceful
// shutdown on SIGTERM, and `audit verify` catching an edited row, a truncation, a wipe, a rewrite
// with every later hash recomputed, and an approval table row the chain disagrees with.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_YAML } from '../../src/policy/index.js';
import { auditRecordHash, GENESIS_HASH, queryAudit } from '../../src/store/index.js';
import { runKubectl } from '../helpers/kubectl.js';
import { sample } from '../helpers/metrics.js';

const BIN = resolve('bin/kube-bastion.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

let dir: string;
let dataDir: string;
let policyFile: string;
let serve: ChildProcess;
let stdout = '';
let stderr = '';
let exited: Promise<number | null>;

function field(pattern: RegExp): string {
  const m = pattern.exec(stdout);
  if (!m) throw new Error(`no ${pattern} in serve output:\n${stdout}`);
  return m[1]!;
}

beforeAll(async () => {
  expect(existsSync('dist/cli/main.js'), 'run `npm run build` first').toBe(true);
  dir = mkdtempSync(join(tmpdir(), 'kb-serve-'));
  dataDir = join(dir, 'data');
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, DEFAULT_POLICY_YAML);
  serve = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, '--recordings', join(dir, 'rec'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', '--policy', policyFile, '--shutdown-grace', '1', '--hold-timeout', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serve.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  serve.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  exited = new Promise((r) => serve.on('exit', (code) => r(code)));
  const deadline = Date.now() + 30_000;
  while (!stdout.includes('admin token')) {
    if (Date.now() > deadline || serve.exitCode !== null) throw new Error(`serve did not start:\n${stdout}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  if (serve.exitCode === null) serve.kill('SIGKILL');
});

describe('kube-bastion serve', () => {
  it('bootstraps a demo agent and an admin, and the demo kubeconfig works with kubectl', async () => {
    const kubeconfig = join(dir, field(/demo agent kubeconfig: (\S+)/).replace(/^.*\/data\//, 'data/'));
    expect(existsSync(kubeconfig)).toBe(true);
    const pods = await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo', '-o', 'name'] });
    expect(pods.stdout.toString()).toBe('pod/shell-0\npod/web-0\n');
    const secret = await runKubectl({ minor: 27, kubeconfig, args: ['get', 'secret', '-n', 'demo'] });
    expect(secret.code).toBe(1);
    expect(secret.stderr).toContain('Error from server (Forbidden)');
  });

  it('serves the control API with the admin token, and metrics by decision with latency histograms', async () => {
    const control = field(/control API:\s+(http:\/\/\S+)\/v1/);
    const token = field(/admin token[^:]*: (kbu_\S+)/);
    const agents = await fetch(`${control}/v1/agents`, { headers: { Authorization: `Bearer ${token}` } });
    expect(agents.status).toBe(200);
    expect(((await agents.json()) as { items: Array<{ name: string }> }).items.map((a) => a.name)).toEqual(['demo']);
    expect((await fetch(`${control}/v1/agents`)).status).toBe(401);
    const metrics = await (await fetch(`${control}/metrics`)).text();
    expect(sample(metrics, 'kube_bastion_requests_total', { code: '200', decision: 'allow', verb: 'list' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'kube_bastion_requests_total', { code: '403', decision: 'approval', verb: 'list' })).toBe(1);
    expect(sample(metrics, 'kube_bastion_request_duration_seconds_bucket', { decision: 'allow', le: '+Inf' })).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'kube_bastion_request_duration_seconds_count', { decision: 'approval' })).toBe(1);
    expect(sample(metrics, 'kube_bastion_policy_reloads_total', { result: 'ok' })).toBe(1);
    expect(sample(metrics, 'kube_bastion_inflight_requests')).toBe(0);
    // prom-client's default process metrics come along.
    expect(sample(metrics, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('agent add issues a distinct identity that kubectl uses; user add prints the token last', async () => {
    const url = field(/Kubernetes endpoint: (https:\/\/\S+)/);
    const out = join(dir, 'second.kubeconfig');
    const added = cli('agent', 'add', 'second', '--data-dir', dataDir, '--server', url, '--kubeconfig-out', out);
    expect(added.stderr).toBe('');
    expect(added.status).toBe(0);
    // Without --owner, the first admin owns it (serve's demo agent has no owner).
    expect(added.stdout).toMatch(/^agent second \(\S+\) created, owned by admin$/m);
    const control = field(/control API:\s+(http:\/\/\S+)\/v1/);
    const token = field(/admin token[^:]*: (kbu_\S+)/);
    const listed = cli('agent', 'list', '-o', 'json', '--server', control, '--token', token);
    expect(listed.status).toBe(0);
    const agents = JSON.parse(listed.stdout) as { items: Array<{ name: string; owner: string | null }> };
    expect(agents.items.map((a) => [a.name, a.owner])).toEqual([
      ['demo', null],
      ['second', 'admin'],
    ]);
    const unknownOwner = cli('agent', 'add', 'third', '--owner', 'nobody', '--data-dir', dataDir, '--server', url, '--kubeconfig-out', out);
    expect(unknownOwner.status).toBe(2);
    expect(unknownOwner.stderr).toContain('--owner: owner "nobody" is not a user');
    const r = await runKubectl({ minor: 33, kubeconfig: out, args: ['get', 'ns', '-o', 'name'] });
    expect(r.stdout.toString()).toContain('namespace/demo');
    expect(cli('agent', 'add', 'second', '--data-dir', dataDir, '--server', url, '--kubeconfig-out', out).status).toBe(2);
    const user = cli('user', 'add', 'alice', '--role', 'approver', '--data-dir', dataDir);
    expect(user.status).toBe(0);
    expect(user.stdout.trim().split('\n').pop()).toMatch(/^kbu_[A-Za-z0-9_-]{20,}$/);
    expect(cli('user', 'add', 'bob', '--role', 'root', '--data-dir', dataDir).stderr).toContain('--role must be one of approver, reviewer, admin');
  });

  it('reloads the policy on SIGHUP; a broken version is rejected and the previous stays', async () => {
    const kubeconfig = join(dataDir, 'agents', 'demo.kubeconfig');
    const stricter = DEFAULT_POLICY_YAML.replace('  - name: reads\n', '  - name: no-pod-reads\n    match: { resources: [pods] }\n    action: deny\n    reason: reads of pods are off today\n\n  - name: reads\n');
    writeFileSync(policyFile, stricter);
    serve.kill('SIGHUP');
    await expect.poll(async () => (await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo'] })).stderr, { timeout: 10_000 }).toContain('kube-bastion rule "no-pod-reads" denies agent "demo"');
    writeFileSync(policyFile, 'apiVersion: kube-bastion/v1\nkind: Policy\ndefault: allw\nrules: []\n');
    serve.kill('SIGHUP');
    await expect.poll(() => stderr, { timeout: 10_000 }).toContain('policy reload rejected');
    expect(stderr).toMatch(/policy\.yaml:3:10/);
    const still = await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo'] });
    expect(still.stderr).toContain('no-pod-reads');
    writeFileSync(policyFile, DEFAULT_POLICY_YAML);
    serve.kill('SIGHUP');
    await expect.poll(async () => (await runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo', '-o', 'name'] })).stdout.toString(), { timeout: 10_000 }).toContain('pod/web-0');
  });

  it("the demo agent has no owner: the first admin may approve for it (the README's quick start), here as a grant", async () => {
    const control = field(/control API:\s+(http:\/\/\S+)\/v1/);
    const token = field(/admin token[^:]*: (kbu_\S+)/);
    // This bastion holds for 1 s only; a grant is the same decision without the race.
    const granted = cli('approvals', 'grant', '--agent', 'demo', '--namespace', 'demo', '--pod', 'web-0', '--container', 'app', '--verbs', 'exec', '--ttl', '10m', '--reason', 'quick start', '--server', control, '--token', token);
    expect(granted.stderr).toBe('');
    expect(granted.status).toBe(0);
    const kubeconfig = join(dataDir, 'agents', 'demo.kubeconfig');
    const r = await runKubectl({ minor: 33, kubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'echo', 'quick start'] });
    expect(r.stdout.toString()).toBe('quick start\n');
    expect(r.code).toBe(0);
  });

  it('stops on SIGTERM within the grace period, ending an open watch, and exits 0', async () => {
    const kubeconfig = join(dataDir, 'agents', 'demo.kubeconfig');
    let printed = '';
    const watch = runKubectl({ minor: 33, kubeconfig, args: ['get', 'pods', '-n', 'demo', '-w'], timeoutMs: 30_000, onStdout: (d) => (printed += d.toString()) });
    // The watch is open once kubectl has printed the list it watches.
    await expect.poll(() => printed, { timeout: 20_000 }).toContain('web-0');
    serve.kill('SIGTERM');
    expect(await exited).toBe(0);
    const w = await watch;
    expect(w.stdout.toString()).toContain('web-0');
    expect(stderr).toContain('"msg":"stopped"');
  });

  it('audit verify passes on the untouched log, every row covered by the checkpoint written at stop', () => {
    const ok = cli('audit', 'verify', '--data-dir', dataDir);
    expect(ok.stdout).toMatch(/^audit log OK: \d+ rows, head [0-9a-f]{64}$/m);
    const rows = Number(/OK: (\d+) rows/.exec(ok.stdout)![1]);
    expect(ok.stdout).toMatch(new RegExp(`the latest, checkpoint \\d+ \\(.+\\), covers rows 1\\.\\.${rows}\n`));
    expect(ok.stdout).toMatch(/ [1-9]\d* approvals and \d+ sessions checked against their audit rows: 0 disagree\n$/);
    expect(ok.status).toBe(0);
    expect(stdout).toMatch(/signing key: +SHA256:[A-Za-z0-9+/]{43} /);
  });

  describe('on a copy of the data dir, someone with the database file', () => {
    /** A copy of the stopped bastion's data dir, changed by `sql` with the append-only triggers dropped. */
    function tampered(sql: (db: Database.Database) => void): string {
      const copy = join(mkdtempSync(join(tmpdir(), 'kb-tamper-')), 'data');
      cpSync(dataDir, copy, { recursive: true });
      const db = new Database(join(copy, 'kube-bastion.db'));
      db.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; DROP INDEX audit_events_prev_hash;');
      db.transaction(() => sql(db))();
      db.close();
      return copy;
    }
    const lastId = (): number => {
      const db = new Database(join(dataDir, 'kube-bastion.db'), { readonly: true });
      try {
        return (db.prepare('SELECT MAX(id) AS id FROM audit_events').get() as { id: number }).id;
      } finally {
        db.close();
      }
    };

    it('deleting the last row is a truncation', () => {
      const last = lastId();
      const r = cli('audit', 'verify', '--data-dir', tampered((db) => db.prepare('DELETE FROM audit_events WHERE id = ?').run(last)));
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`^audit log BROKEN at row ${last} \\(truncated\\): truncation: row ${last} is missing after row ${last - 1}, though checkpoint \\d+ \\(.+\\) covered them$`, 'm'));
    });

    it('deleting every row is a wipe', () => {
      const r = cli('audit', 'verify', '--data-dir', tampered((db) => db.exec('DELETE FROM audit_events')));
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`^audit log BROKEN at row ${lastId()} \\(wiped\\): wipe: the audit log has no rows, but checkpoint \\d+ \\(.+\\) covered ${lastId()} rows`, 'm'));
    });

    it('editing a middle row and recomputing every later hash is a rewrite', () => {
      const copy = tampered((db) => {
        const rows = (db.prepare('SELECT id FROM audit_events ORDER BY id').all() as { id: number }[]).map((r) => r.id);
        const middle = rows[Math.floor(rows.length / 2)]!;
        db.prepare("UPDATE audit_events SET actor = 'user:mallory' WHERE id = ?").run(middle);
        const upd = db.prepare('UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?');
        let prev = GENESIS_HASH;
        for (const record of queryAudit(db, { limit: 10_000 })) {
          const hash = auditRecordHash(prev, record);
          upd.run(prev, hash, record.id);
          prev = hash;
        }
      });
      const r = cli('audit', 'verify', '--data-dir', copy);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/^audit log BROKEN at row \d+ \(anchor-mismatch\): rewrite: the head hash at row \d+ is [0-9a-f]{64}, but checkpoint \d+ \(.+\) recorded [0-9a-f]{64}/m);
    });

    it("changing an approval's expires_at is reported", () => {
      let id = '';
      const copy = tampered((db) => {
        id = (db.prepare('SELECT id FROM approvals ORDER BY created_at LIMIT 1').get() as { id: string }).id;
        db.prepare("UPDATE approvals SET expires_at = '2099-01-01T00:00:00.000Z' WHERE id = ?").run(id);
      });
      const r = cli('audit', 'verify', '--data-dir', copy);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/^audit log BROKEN: 1 finding \(the chain itself is intact: \d+ rows\)$/m);
      expect(r.stdout).toMatch(new RegExp(`^  approval ${id}: expiresAt in the approvals table is "2099-01-01T00:00:00.000Z", but its audit rows \\(last: row \\d+\\) say "\\d{4}-`, 'm'));
    });
  });

  it('audit verify names the row someone edited', () => {
    const db = new Database(join(dataDir, 'kube-bastion.db'));
    const row = db.prepare("SELECT id FROM audit_events WHERE event = 'request' AND decision = 'approval' ORDER BY id LIMIT 1").get() as { id: number };
    // Someone with the file in hand: the append-only triggers only stop honest mistakes.
    db.exec('DROP TRIGGER audit_events_no_update');
    db.prepare("UPDATE audit_events SET decision = 'allow' WHERE id = ?").run(row.id);
    db.close();
    const broken = cli('audit', 'verify', '--data-dir', dataDir);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain(`audit log BROKEN at row ${row.id} (hash-mismatch)`);
  });
});

describe('serve configuration errors', () => {
  it('names the flag or the policy file line', () => {
    const badListen = cli('serve', '--listen', '6443');
    expect(badListen.status).toBe(2);
    expect(badListen.stderr).toContain('--listen: expected HOST:PORT');
    const exposed = cli('serve', '--control-listen', '0.0.0.0:8080');
    expect(exposed.status).toBe(2);
    expect(exposed.stderr).toContain('the control endpoint may be plain HTTP only on loopback');
    const badPolicy = join(mkdtempSync(join(tmpdir(), 'kb-policy-')), 'p.yaml');
    writeFileSync(badPolicy, 'apiVersion: kube-bastion/v1\nkind: Policy\ndefault: deny\nrules:\n  - name: x\n    match: { verbs: [lst] }\n    action: allow\n');
    const r = cli('serve', '--policy', badPolicy, '--data-dir', join(tmpdir(), 'kb-unused'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/p\.yaml:6:\d+: rules\[0\]\.match\.verbs\[0\]/);
  });
});

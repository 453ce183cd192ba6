// `kube-bastion export` and `kube-bastion verify` end to end: a ControlEndpoint with the session
// routes over a real store and recording files; export through the API (and from the data dir),
// then verify, then change bytes and watch verify name the file.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlEndpoint } from '../api/control-endpoint.js';
import { startTestControl } from '../api/test-support.js';
import { BastionError } from '../errors/index.js';
import { ProgressLine } from '../evidence/progress.js';
import { generateSigningKey, loadOrCreateSigningKey, signingKeyPaths } from '../evidence/signing-key.js';
import { checkpointDataDir } from '../evidence/checkpoints.js';
import { encodeManifest, signManifest, type Manifest } from '../evidence/manifest.js';
import { fixture, sha, type Fixture } from '../evidence/test-support.js';
import { parseTime, runExport, type ExportIo } from './export.js';
import { runVerify } from './verify.js';

let f: Fixture;
let control: ControlEndpoint;
let rita: string;
let out: string;
let n = 0;

beforeAll(async () => {
  f = await fixture('kb-export-cli-');
  out = mkdtempSync(join(tmpdir(), 'kb-export-cli-out-'));
  control = await startTestControl({ store: f.store, approvals: f.approvals, recordingsDir: f.recordingsDir, dataDir: f.dataDir });
  rita = (await f.store.users.createUser('rita', 'reviewer')).token;
  // The head as the bastion signs it: bundles carry the checkpoint.
  await checkpointDataDir(f.dataDir, f.store.audit);
});

afterAll(async () => {
  await control?.close();
  await f?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function exportCmd(args: string[], io: Partial<ExportIo> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runExport(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { KUBE_BASTION_URL: control.url, KUBE_BASTION_TOKEN: rita },
    stderrIsTTY: false,
    ...io,
  });
  return { code, stdout, stderr };
}

/** The trust file of these tests (never the user's own). */
const trustFile = (): string => join(out, 'config', 'kube-bastion', 'trusted-keys');

async function verifyCmd(args: string[]): Promise<Run> {
  let stdout = '';
  const code = await runVerify(args, { stdout: (t) => (stdout += t) }, { XDG_CONFIG_HOME: join(out, 'config') });
  return { code, stdout, stderr: '' };
}

function dir(): string {
  return join(out, `x${++n}`);
}

function flip(path: string, at: number): void {
  const b = readFileSync(path);
  at = Math.min(at, b.length - 1);
  b[at] = b[at]! ^ 0x01;
  writeFileSync(path, b);
}

describe('export through the control API, then verify', () => {
  let target: string;
  beforeAll(async () => {
    target = dir();
    const r = await exportCmd(['--approval', f.approval.id, '--out', target]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^exported approval ${f.approval.id} to ${target}: 10 files, .+, signed by key [0-9a-f]{16}\\n$`));
  });

  it('writes the evidence straight into --out (no top folder), and verify says OK', async () => {
    expect(readdirSync(target).sort()).toEqual(['approval.json', 'audit.jsonl', 'checkpoints.jsonl', 'manifest.json', 'manifest.sig', 'record.json', 'sessions']);
    const key = loadOrCreateSigningKey(f.dataDir);
    // Nothing pinned yet: a signature by the key the bundle carries proves nothing.
    const unpinned = await verifyCmd([target]);
    expect(unpinned.code).toBe(1);
    expect(unpinned.stdout).toBe(
      `UNTRUSTED KEY manifest.json: the bundle is signed by key ${key.fingerprint}, which only the bundle itself vouches for: no bastion key is pinned ` +
        `(${trustFile()} has none); pin the bastion's key with --key FILE or --fingerprint SHA256:... (GET /v1/signing-key, the serve banner)\nFAILED: 1 problem in ${target}\n`,
    );
    // The first pinned verify writes the trust file; from then on no flag is needed.
    expect(await verifyCmd([target, '--key', signingKeyPaths(f.dataDir).publicKey])).toEqual({
      code: 0,
      stdout:
        `OK: 10 files, signed by key ${key.keyId} (${key.fingerprint}, pinned with --key); 1 signed audit checkpoint agrees with its audit rows\n` +
        `pinned key ${key.fingerprint} in ${trustFile()}: verify needs no --key or --fingerprint from now on\n`,
      stderr: '',
    });
    expect(readFileSync(trustFile(), 'utf8')).toMatch(new RegExp(`^${key.fingerprint.replace(/[+/]/g, '\\$&')} pinned `));
    expect(await verifyCmd([target])).toMatchObject({ code: 0, stdout: `OK: 10 files, signed by key ${key.keyId} (${key.fingerprint}, pinned in ${trustFile()}); 1 signed audit checkpoint agrees with its audit rows\n` });
    expect(await verifyCmd([target, '--fingerprint', key.fingerprint])).toMatchObject({ code: 0 });
  });

  it('a bundle whose cast was edited, its manifest re-hashed and re-signed with a new key, fails once the key is pinned: the key is not the bastion\'s', async () => {
    const s1 = f.sessions[0]!.id;
    const copy = dir();
    cpSync(target, copy, { recursive: true });
    const cast = join(copy, 'sessions', `${s1}.cast`);
    writeFileSync(cast, readFileSync(cast, 'utf8').replace(/"o", "/, '"o", "forged '));
    const manifest = JSON.parse(readFileSync(join(copy, 'manifest.json'), 'utf8')) as Manifest;
    const forger = generateSigningKey();
    const file = manifest.files.find((x) => x.path === `sessions/${s1}.cast`)!;
    file.sha256 = sha(readFileSync(cast));
    file.size = readFileSync(cast).length;
    manifest.key = { id: forger.keyId, algorithm: 'Ed25519', publicKeyPem: forger.publicKeyPem };
    const bytes = encodeManifest(manifest);
    writeFileSync(join(copy, 'manifest.json'), bytes);
    writeFileSync(join(copy, 'manifest.sig'), signManifest(bytes, forger));
    const r = await verifyCmd([copy]);
    expect(r.code).toBe(1);
    const fingerprint = loadOrCreateSigningKey(f.dataDir).fingerprint;
    expect(r.stdout).toContain(`UNTRUSTED KEY manifest.json: the bundle is signed by key ${forger.fingerprint} which is not the bastion's pinned key (pinned: ${fingerprint}, from ${trustFile()})`);
    // The checkpoints it carries are the bastion's: they do not verify with the forger's key either.
    expect(r.stdout).toContain(`BAD SIGNATURE checkpoints.jsonl: checkpoints.jsonl line 1: signed by key ${fingerprint}, not by key ${forger.fingerprint} it is checked with`);
    // With the bastion's key given as --key, the same.
    const mine = await verifyCmd([copy, '--key', signingKeyPaths(f.dataDir).publicKey]);
    expect(mine.code).toBe(1);
    expect(mine.stdout).toContain(`which is not the bastion's pinned key ${fingerprint}`);
  });

  it('verify names a changed cast, raw sidecar, session file, audit file, approval file, manifest and signature', async () => {
    const [s1, s2] = f.sessions.map((s) => s.id);
    for (const [file, expected] of [
      [`sessions/${s1}.cast`, `MISMATCH sessions/${s1}.cast: sha256 `],
      [`sessions/${s2}.raw`, `MISMATCH sessions/${s2}.raw: sha256 `],
      [`sessions/${s1}.json`, `MISMATCH sessions/${s1}.json: sha256 `],
      ['audit.jsonl', 'MISMATCH audit.jsonl: sha256 '],
      ['approval.json', 'MISMATCH approval.json: sha256 '],
      ['manifest.json', 'BAD SIGNATURE manifest.json: manifest.sig is not a signature of these bytes by key '],
      ['manifest.sig', 'BAD SIGNATURE manifest.'],
    ] as const) {
      const copy = dir();
      rmSync(copy, { recursive: true, force: true });
      cpSync(target, copy, { recursive: true });
      flip(join(copy, ...file.split('/')), 40);
      const r = await verifyCmd([copy]);
      expect(r.code, file).toBe(1);
      const first = r.stdout.split('\n')[0]!;
      expect(first.startsWith(expected), `${file}: ${r.stdout}`).toBe(true);
      expect(r.stdout).toContain(file === 'manifest.sig' ? 'manifest.sig' : file);
      expect(r.stdout).toMatch(/\nFAILED: \d+ problems? in /);
    }
  });

  it('exports a session and a time range, converting casts with --format', async () => {
    const s = f.sessions[0]!;
    const one = dir();
    const r = await exportCmd(['--session', s.id, '--out', one, '--format', 'v3']);
    expect(r.code).toBe(0);
    expect(JSON.parse(readFileSync(join(one, 'sessions', `${s.id}.cast`), 'utf8').split('\n')[0]!)).toMatchObject({ version: 3 });
    expect((await verifyCmd([one])).code).toBe(0);
    const range = dir();
    const r2 = await exportCmd(['--since', '1h', '--out', range]);
    expect(r2.code).toBe(0);
    expect(r2.stdout).toMatch(/^exported since \d{4}-/);
    expect(readdirSync(join(range, 'approvals')).sort()).toEqual([`${f.approval.id}.json`, `${f.other.id}.json`].sort());
    expect((await verifyCmd([range])).code).toBe(0);
  });

  it('shows progress: one rewritten line on a terminal, cleared at the end', async () => {
    const r = await exportCmd(['--approval', f.approval.id, '--out', dir()], { stderrIsTTY: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\r\x1b\[Kdownloading: .+ \/ .+ \(100%\)/);
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
    expect(r.stderr).not.toContain('\n');
    const quiet = await exportCmd(['--approval', f.approval.id, '--out', dir(), '--quiet'], { stderrIsTTY: true });
    expect(quiet.stderr).toBe('');
  });

  it('exits 1 with the reason when the API refuses or cannot be reached, leaving nothing behind', async () => {
    const target1 = dir();
    const missing = await exportCmd(['--approval', 'apr_aaaaaaaaaaaaaaaaaaaa', '--out', target1]);
    expect(missing).toMatchObject({ code: 1, stdout: '' });
    expect(missing.stderr).toMatch(/^kube-bastion export: approval "apr_aaaaaaaaaaaaaaaaaaaa" not found\n$/);
    const badToken = await exportCmd(['--approval', f.approval.id, '--out', dir()], { env: { KUBE_BASTION_URL: control.url, KUBE_BASTION_TOKEN: 'nope' } });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/check --token/);
    const down = await exportCmd(['--approval', f.approval.id, '--out', dir(), '--server', 'http://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the control API at http:\/\/127\.0\.0\.1:1/);
    expect(readdirSync(out).filter((x) => x.includes('partial'))).toEqual([]);
  });
});

describe('export from the data dir (no server)', () => {
  it('builds the same evidence, signed by the same key, and records the export', async () => {
    const target = dir();
    const r = await exportCmd(['--approval', f.approval.id, '--out', target, '--data-dir', f.dataDir, '--recordings', f.recordingsDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const v = await verifyCmd([target, '--key', signingKeyPaths(f.dataDir).publicKey]);
    expect(v.code).toBe(0);
    for (const s of f.sessions) expect(sha(readFileSync(join(target, 'sessions', `${s.id}.raw`)))).toBe(s.rawSha256);
    const rows = await f.store.audit.query({ approvalId: f.approval.id, event: 'evidence.exported' });
    expect(rows.at(-1)?.actor).toBe('cli');
  });

  it('refuses a data dir without a database', async () => {
    await expect(exportCmd(['--approval', f.approval.id, '--out', dir(), '--data-dir', out])).rejects.toThrow(/no kube-bastion.db/);
  });
});

describe('usage errors (exit 2 through main)', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['nothing to export', ['--out', 'x'], /say what to export/],
    ['two subjects', ['--approval', 'a', '--session', 'b', '--out', 'x'], /only one of --approval, --session/],
    ['no --out', ['--approval', 'a'], /--out DIR is required/],
    ['bad format', ['--approval', 'a', '--out', 'x', '--format', 'v9'], /give v2 or v3/],
    ['bad time', ['--since', 'last tuesday', '--out', 'x'], /ISO 8601/],
    ['--until alone', ['--approval', 'a', '--until', '1h', '--out', 'x'], /--until goes with --since/],
    ['server with data dir', ['--approval', 'a', '--out', 'x', '--data-dir', 'd', '--server', 'http://x'], /not with --data-dir/],
    ['unknown flag', ['--approval', 'a', '--out', 'x', '--colour'], /Unknown option/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const err = await exportCmd(args.map((a) => (a === 'x' ? join(out, 'never') : a))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BastionError);
      expect((err as BastionError).code).toBe('USAGE');
      expect((err as BastionError).message).toMatch(message);
    });
  }

  it('refuses a non-empty --out', async () => {
    const busy = dir();
    mkdirSync(busy);
    writeFileSync(join(busy, 'x'), 'x');
    await expect(exportCmd(['--approval', f.approval.id, '--out', busy])).rejects.toThrow(/not empty/);
  });

  it('verify: no directory, two directories, a bad key file', async () => {
    await expect(verifyCmd([])).rejects.toThrow(/give the evidence directory/);
    await expect(verifyCmd([out, out])).rejects.toThrow(/give one evidence directory/);
    await expect(verifyCmd([join(out, 'nope')])).rejects.toThrow(/no such directory/);
    const bad = join(out, 'bad.pem');
    writeFileSync(bad, 'not a key');
    await expect(verifyCmd([out, '--key', bad])).rejects.toThrow(/--key/);
  });

  it('verify of a directory that is not evidence', async () => {
    const empty = dir();
    mkdirSync(empty);
    const r = await verifyCmd([empty]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('MISSING manifest.json');
  });
});

describe('parts', () => {
  it('parseTime takes ISO 8601 or a duration back from now', () => {
    const now = new Date('2025-06-02T12:00:00Z');
    expect(parseTime('2025-06-01T00:00:00Z', '--since', now).toISOString()).toBe('2025-06-01T00:00:00.000Z');
    expect(parseTime('90m', '--since', now).toISOString()).toBe('2025-06-02T10:30:00.000Z');
    expect(parseTime('1d12h', '--since', now).toISOString()).toBe('2025-06-01T00:00:00.000Z');
    expect(() => parseTime('soon', '--since', now)).toThrow(/--since "soon"/);
  });

  it('progress lines off a terminal come at most every interval', () => {
    let t = 0;
    const lines: string[] = [];
    const p = new ProgressLine({ write: (s) => lines.push(s), tty: false, now: () => t, intervalMs: 2000 });
    p.update('downloading', 10, 100);
    t = 1999;
    p.update('downloading', 20, 100);
    t = 2000;
    p.update('downloading', 3 * 1024 * 1024, 10 * 1024 * 1024);
    t = 2500;
    p.update('downloading', 10 * 1024 * 1024, 10 * 1024 * 1024);
    p.done();
    expect(lines).toEqual(['downloading: 3.0 MiB / 10 MiB (30%)\n']);
  });
});

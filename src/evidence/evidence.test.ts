// Signing key, manifest, bundle and verification: export then verify passes; one changed byte in
// any file (or in the manifest or its signature) fails verification and names the file.
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evidenceTar, evidenceTarSize, planEvidence, storeApprovals, writeEvidenceDir, type EvidenceSources } from './bundle.js';
import { encodeManifest, formatProblem, MANIFEST_FILE, SIGNATURE_FILE, signManifest, verifyEvidenceDir, type Manifest, type VerifyResult } from './manifest.js';
import { generateSigningKey, keyIdOf, loadOrCreateSigningKey, signingKeyPaths, type SigningKey } from './signing-key.js';
import { fixture, forwardedSession, recordedSession, castV2, sha, type Fixture } from './test-support.js';
import { createRecorder, toSessionRecording } from '../recording/recorder.js';
import type { Session } from '../store/types.js';
import { unpackEvidenceTar } from './unpack.js';

let f: Fixture;
let key: SigningKey;
let out: string;
let counter = 0;

beforeAll(async () => {
  f = await fixture();
  key = loadOrCreateSigningKey(f.dataDir);
  out = mkdtempSync(join(tmpdir(), 'kb-evidence-out-'));
});
afterAll(async () => {
  await f?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

function sources(over: Partial<EvidenceSources> = {}): EvidenceSources {
  return { sessions: f.store.sessions, approvals: f.approvals, audit: f.store.audit, recordingsDir: f.recordingsDir, signingKey: key, ...over };
}

function fresh(): string {
  return join(out, `e${++counter}`);
}

async function exported(req: Parameters<typeof planEvidence>[1] = { approvalId: f.approval.id }, over: Partial<EvidenceSources> = {}): Promise<string> {
  const dir = fresh();
  await writeEvidenceDir(await planEvidence(sources(over), req), dir);
  return dir;
}

function files(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? files(dir, prefix ? `${prefix}/${e.name}` : e.name) : [prefix ? `${prefix}/${e.name}` : e.name]))
    .sort();
}

function copy(dir: string): string {
  const to = fresh();
  execFileSync('cp', ['-a', dir, to]);
  return to;
}

function lines(r: VerifyResult): string[] {
  return r.problems.map(formatProblem);
}

describe('the signing key', () => {
  it('is created on first use: PKCS#8 PEM 0600 in a 0700 folder, with the public key beside it', () => {
    const paths = signingKeyPaths(f.dataDir);
    expect(statSync(paths.dir).mode & 0o777).toBe(0o700);
    expect(statSync(paths.privateKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(paths.privateKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(readFileSync(paths.publicKey, 'utf8')).toBe(key.publicKeyPem);
    expect(key.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
  });

  it('is the same key the next time, and its id is sha256 of the SPKI DER', () => {
    const again = loadOrCreateSigningKey(f.dataDir);
    expect(again.keyId).toBe(key.keyId);
    const der = createPublicKey(key.publicKeyPem).export({ type: 'spki', format: 'der' });
    expect(key.keyId).toBe(createHash('sha256').update(der).digest('hex').slice(0, 16));
    expect(keyIdOf(key.publicKeyPem)).toBe(key.keyId);
  });

  it('rewrites a missing public key file and refuses a private key others can read', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kb-key-'));
    try {
      const k = loadOrCreateSigningKey(dataDir);
      const paths = signingKeyPaths(dataDir);
      unlinkSync(paths.publicKey);
      expect(loadOrCreateSigningKey(dataDir).keyId).toBe(k.keyId);
      expect(readFileSync(paths.publicKey, 'utf8')).toBe(k.publicKeyPem);
      chmodSync(paths.privateKey, 0o644);
      expect(() => loadOrCreateSigningKey(dataDir)).toThrow(/readable by others/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('an approval export', () => {
  let dir: string;
  let manifest: Manifest;
  beforeAll(async () => {
    dir = await exported();
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
  });

  it('verifies, signed by the bastion key', async () => {
    const r = await verifyEvidenceDir(dir);
    expect(lines(r)).toEqual([]);
    expect(r).toMatchObject({ ok: true, files: 8, keyId: key.keyId });
    expect((await verifyEvidenceDir(dir, { publicKeyPem: key.publicKeyPem })).ok).toBe(true);
  });

  it('has the layout: approval, sessions with casts and raw sidecars, audit rows, manifest and signature', () => {
    const [s1, s2] = f.sessions.map((s) => s.id);
    expect(files(dir)).toEqual(
      [
        'approval.json',
        'audit.jsonl',
        MANIFEST_FILE,
        SIGNATURE_FILE,
        `sessions/${s1}.cast`,
        `sessions/${s1}.json`,
        `sessions/${s1}.raw`,
        `sessions/${s2}.cast`,
        `sessions/${s2}.json`,
        `sessions/${s2}.raw`,
      ].sort(),
    );
    expect(manifest).toMatchObject({
      format: 'kube-bastion-evidence',
      version: 1,
      key: { id: key.keyId, algorithm: 'Ed25519', publicKeyPem: key.publicKeyPem },
      subject: { kind: 'approval', approvalId: f.approval.id },
      castFormat: null,
      problems: [],
    });
    expect(manifest.files.map((x) => x.path)).toEqual(files(dir).filter((p) => p !== MANIFEST_FILE && p !== SIGNATURE_FILE));
    for (const file of manifest.files) {
      const data = readFileSync(join(dir, file.path));
      expect(file).toEqual({ path: file.path, size: data.length, sha256: sha(data) });
    }
  });

  it('copies casts and raw sidecars byte for byte, matching the hashes recorded at session end', () => {
    for (const s of f.sessions) {
      expect(sha(readFileSync(join(dir, 'sessions', `${s.id}.cast`)))).toBe(s.castSha256);
      expect(sha(readFileSync(join(dir, 'sessions', `${s.id}.raw`)))).toBe(s.rawSha256);
    }
  });

  it('has the approval record, the session rows with every hash, and all audit rows of the approval (refused attempts too)', () => {
    expect(JSON.parse(readFileSync(join(dir, 'approval.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(f.approval)));
    const s1 = f.sessions[0]!;
    const view = JSON.parse(readFileSync(join(dir, 'sessions', `${s1.id}.json`), 'utf8')) as Record<string, unknown>;
    expect(view).toMatchObject({ id: s1.id, approvalId: f.approval.id, agent: 'claude', state: 'ended', endReason: 'completed', exitCode: 3 });
    expect(view['sha256']).toEqual({ cast: s1.castSha256, raw: s1.rawSha256, stdin: sha('in'), stdout: sha('out'), stderr: sha('err') });
    const rows = readFileSync(join(dir, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; event: string; decision: string | null; approvalId: string | null; sessionId: string | null; hash: string });
    expect(rows.map((r) => r.event)).toEqual(['approval.granted', 'request', 'session.start', 'session.end', 'session.start', 'session.end']);
    expect(rows.find((r) => r.event === 'request')).toMatchObject({ decision: 'deny', approvalId: f.approval.id });
    expect(rows.every((r) => r.approvalId === f.approval.id)).toBe(true);
    expect(rows.map((r) => r.id)).toEqual([...rows.map((r) => r.id)].sort((a, b) => a - b));
    expect(rows[0]!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  describe('changing one byte of any file fails verification and names the file', () => {
    const positions = (size: number): number[] => [...new Set([0, 1, Math.floor(size / 2), size - 2, size - 1].filter((p) => p >= 0 && p < size))];

    for (const kind of ['approval.json', 'audit.jsonl', 'session.json', 'cast v2', 'cast v3', 'raw']) {
      it(kind, async () => {
        const [s1, s2] = f.sessions.map((s) => s.id);
        const path = {
          'approval.json': 'approval.json',
          'audit.jsonl': 'audit.jsonl',
          'session.json': `sessions/${s1}.json`,
          'cast v2': `sessions/${s1}.cast`,
          'cast v3': `sessions/${s2}.cast`,
          raw: `sessions/${s1}.raw`,
        }[kind]!;
        const original = readFileSync(join(dir, path));
        for (const at of positions(original.length)) {
          for (const mask of [0x01, 0x80]) {
            const copyDir = copy(dir);
            const changed = Buffer.from(original);
            changed[at] = changed[at]! ^ mask;
            writeFileSync(join(copyDir, path), changed);
            const r = await verifyEvidenceDir(copyDir);
            expect(r.ok, `${path} byte ${at}`).toBe(false);
            expect(lines(r)).toEqual([`MISMATCH ${path}: sha256 ${sha(changed)} (manifest: ${sha(original)})`]);
            rmSync(copyDir, { recursive: true });
          }
        }
      });
    }

    it('manifest.json (the first 50 bytes, then every 11th, several bit patterns): BAD SIGNATURE manifest.json first', async () => {
      const original = readFileSync(join(dir, MANIFEST_FILE));
      const copyDir = copy(dir);
      try {
        for (let at = 0; at < original.length; at += at < 50 ? 1 : 11) {
          for (const mask of [0x01, 0x20, 0xff]) {
            const changed = Buffer.from(original);
            changed[at] = changed[at]! ^ mask;
            writeFileSync(join(copyDir, MANIFEST_FILE), changed);
            const r = await verifyEvidenceDir(copyDir);
            expect(r.ok, `manifest byte ${at}`).toBe(false);
            expect(lines(r)[0], `manifest byte ${at} ^ ${mask}: ${lines(r).join('; ')}`).toMatch(/^BAD SIGNATURE manifest\.json: /);
          }
        }
      } finally {
        rmSync(copyDir, { recursive: true });
      }
    });

    it('manifest.sig (every byte): names manifest.sig', async () => {
      const original = readFileSync(join(dir, SIGNATURE_FILE));
      const copyDir = copy(dir);
      try {
        for (let at = 0; at < original.length; at++) {
          for (const mask of [0x01, 0x04, 0x40]) {
            const changed = Buffer.from(original);
            changed[at] = changed[at]! ^ mask;
            writeFileSync(join(copyDir, SIGNATURE_FILE), changed);
            const r = await verifyEvidenceDir(copyDir);
            expect(r.ok, `sig byte ${at} ^ ${mask}`).toBe(false);
            expect(lines(r).some((l) => l.includes('BAD SIGNATURE') && l.includes(SIGNATURE_FILE)), lines(r).join('; ')).toBe(true);
          }
        }
      } finally {
        rmSync(copyDir, { recursive: true });
      }
    });
  });

  it('reports missing, unexpected and non-regular files by name', async () => {
    const [s1, s2] = f.sessions.map((s) => s.id);
    const d = copy(dir);
    unlinkSync(join(d, 'sessions', `${s1}.raw`));
    writeFileSync(join(d, 'notes.txt'), 'mine');
    mkdirSync(join(d, 'extra'));
    writeFileSync(join(d, 'extra', 'x.bin'), 'x');
    unlinkSync(join(d, 'sessions', `${s2}.cast`));
    symlinkSync(join(dir, 'sessions', `${s2}.cast`), join(d, 'sessions', `${s2}.cast`));
    const r = await verifyEvidenceDir(d);
    expect(lines(r).sort()).toEqual(
      [
        `MISSING sessions/${s1}.raw`,
        `MISMATCH sessions/${s2}.cast: not a regular file`,
        'UNEXPECTED extra/x.bin: not listed in the manifest',
        'UNEXPECTED notes.txt: not listed in the manifest',
      ].sort(),
    );
  });

  it('reports a missing manifest or signature', async () => {
    const a = copy(dir);
    unlinkSync(join(a, SIGNATURE_FILE));
    expect(lines(await verifyEvidenceDir(a))).toEqual(['MISSING manifest.sig: the manifest is not signed']);
    const b = copy(dir);
    unlinkSync(join(b, MANIFEST_FILE));
    expect(lines(await verifyEvidenceDir(b))).toEqual(['MISSING manifest.json: not an evidence directory (no manifest)']);
  });

  it('with a pinned key, refuses evidence re-signed by another key', async () => {
    const [s1] = f.sessions.map((s) => s.id);
    const d = copy(dir);
    const forger = generateSigningKey();
    // Change a recording, fix the manifest's hash, and sign with the forger's key.
    const path = `sessions/${s1}.raw`;
    writeFileSync(join(d, path), 'forged');
    const m = JSON.parse(readFileSync(join(d, MANIFEST_FILE), 'utf8')) as Manifest;
    const entry = m.files.find((x) => x.path === path)!;
    entry.sha256 = sha('forged');
    entry.size = 6;
    m.key = { id: forger.keyId, algorithm: 'Ed25519', publicKeyPem: forger.publicKeyPem };
    const bytes = encodeManifest(m);
    writeFileSync(join(d, MANIFEST_FILE), bytes);
    writeFileSync(join(d, SIGNATURE_FILE), signManifest(bytes, forger));
    // Self-consistent without a pin (only kube-bastion verify insists on one); caught with one.
    expect((await verifyEvidenceDir(d)).ok).toBe(true);
    expect(lines(await verifyEvidenceDir(d, { requirePinned: true }))).toEqual([
      `UNTRUSTED KEY manifest.json: the bundle is signed by key ${forger.fingerprint}, which only the bundle itself vouches for: no bastion key is pinned; ` +
        "pin the bastion's key with --key FILE or --fingerprint SHA256:... (GET /v1/signing-key, the serve banner)",
    ]);
    const pinned = await verifyEvidenceDir(d, { publicKeyPem: key.publicKeyPem });
    expect(pinned.ok).toBe(false);
    expect(lines(pinned)).toEqual([
      `BAD SIGNATURE manifest.json: manifest.sig is not a signature of these bytes by key ${key.keyId} (the pinned key; the manifest names key ${forger.keyId})`,
      `UNTRUSTED KEY manifest.json: the bundle is signed by key ${forger.fingerprint} which is not the bastion's pinned key ${key.fingerprint}`,
    ]);
    expect(lines(await verifyEvidenceDir(d, { trustedFingerprints: [key.fingerprint], trustedFrom: '--fingerprint' }))).toEqual([
      `UNTRUSTED KEY manifest.json: the bundle is signed by key ${forger.fingerprint} which is not the bastion's pinned key (pinned: ${key.fingerprint}, from --fingerprint)`,
    ]);
  });
});

describe('other exports', () => {
  it('converts casts to the asked format (v2 to v3 here) and copies the one already in it', async () => {
    const dir = await exported({ approvalId: f.approval.id, format: 'v3' });
    expect(lines(await verifyEvidenceDir(dir))).toEqual([]);
    const [s1, s2] = f.sessions;
    const c1 = readFileSync(join(dir, 'sessions', `${s1!.id}.cast`), 'utf8').trim().split('\n');
    expect(JSON.parse(c1[0]!)).toMatchObject({ version: 3, term: { cols: 80, rows: 24, type: 'xterm' } });
    expect(c1.slice(1).map((l) => JSON.parse(l) as unknown)).toEqual([
      [0.1, 'o', 'total 0\r\n'],
      [0.1, 'x', '3'],
    ]);
    expect(sha(readFileSync(join(dir, 'sessions', `${s2!.id}.cast`)))).toBe(s2!.castSha256);
    const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
    expect(m.castFormat).toBe('v3');
  });

  it('exports one session with its approval', async () => {
    const s = f.sessions[1]!;
    const dir = await exported({ sessionId: s.id });
    expect(lines(await verifyEvidenceDir(dir))).toEqual([]);
    expect(files(dir)).toEqual(['approval.json', 'audit.jsonl', MANIFEST_FILE, SIGNATURE_FILE, `sessions/${s.id}.cast`, `sessions/${s.id}.json`, `sessions/${s.id}.raw`].sort());
    const events = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { event: string }).event);
    // The approval's rows (grant, refused attempt, both sessions' rows) are there: the approval is the unit of review.
    expect(events).toContain('request');
    expect(events).toContain('approval.granted');
  });

  it('exports a time range: every approval and session in it, approvals under approvals/', async () => {
    const dir = await exported({ since: new Date(Date.now() - 3600_000) });
    expect(lines(await verifyEvidenceDir(dir))).toEqual([]);
    const list = files(dir);
    expect(list).toContain(`approvals/${f.approval.id}.json`);
    expect(list).toContain(`approvals/${f.other.id}.json`);
    expect(list).toContain(`sessions/${f.otherSession.id}.cast`);
    for (const s of f.sessions) expect(list).toContain(`sessions/${s.id}.raw`);
    const empty = await exported({ since: new Date(Date.now() + 3600_000) });
    expect(files(empty)).toEqual(['audit.jsonl', MANIFEST_FILE, SIGNATURE_FILE]);
  });

  it('refuses unknown approvals and sessions (NOT_FOUND)', async () => {
    await expect(planEvidence(sources(), { approvalId: 'apr_nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(planEvidence(sources(), { sessionId: 'ses_nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('reads approvals from the store as the service shows them', async () => {
    const src = storeApprovals(f.store.approvals, () => new Date(Date.now() + 3600_000));
    expect((await src.get(f.approval.id))?.state).toBe('expired');
  });

  it('reports progress for both passes', async () => {
    const seen: string[] = [];
    const plan = await planEvidence(sources(), { approvalId: f.approval.id }, (p) => seen.push(`${p.phase} ${p.done}/${p.total}`));
    await writeEvidenceDir(plan, fresh(), (p) => seen.push(`${p.phase} ${p.done}/${p.total}`));
    expect(seen.at(-1)).toBe(`write ${plan.bytes}/${plan.bytes}`);
    const lastHash = seen.filter((s) => s.startsWith('hash')).at(-1)!;
    const [done, total] = lastHash.slice(5).split('/');
    expect(done).toBe(total);
  });
});

describe('recordings that changed on the bastion', () => {
  let g: Fixture;
  beforeAll(async () => {
    g = await fixture('kb-evidence-tamper-');
  });
  afterAll(() => g?.close());

  it('a recording changed after the session ended, or gone, is a signed problem that verify reports', async () => {
    const [s1, s2] = g.sessions;
    appendFileSync(s1!.rawPath!, 'tampered');
    unlinkSync(join(g.recordingsDir, s2!.castPath!));
    const dir = fresh();
    await writeEvidenceDir(
      await planEvidence({ sessions: g.store.sessions, approvals: g.approvals, audit: g.store.audit, recordingsDir: g.recordingsDir, signingKey: key }, { approvalId: g.approval.id }),
      dir,
    );
    const r = await verifyEvidenceDir(dir);
    expect(r.ok).toBe(false);
    const out = lines(r);
    expect(out).toHaveLength(2);
    expect(out.find((l) => l.includes(s1!.id))).toMatch(new RegExp(`^MISMATCH sessions/${s1!.id}\\.raw: at export: the bastion's file has sha256 [0-9a-f]{64}, but the sha256 recorded when the session ended is ${s1!.rawSha256}`));
    expect(out.find((l) => l.includes(s2!.id))).toMatch(new RegExp(`^MISSING sessions/${s2!.id}\\.cast: at export: the recording file .* is gone from the bastion$`));
  });

  it('never reads a recording outside the recordings directory', async () => {
    const outside = join(g.dir, 'outside.cast');
    writeFileSync(outside, castV2([[0.1, 'o', 'secret']]));
    const s = await recordedSession(g, g.other, castV2([[0.1, 'o', 'x']]), Buffer.from('x'));
    await g.store.sessions.setRecording(s.id, { castPath: outside });
    const dir = fresh();
    await writeEvidenceDir(
      await planEvidence({ sessions: g.store.sessions, approvals: g.approvals, audit: g.store.audit, recordingsDir: g.recordingsDir, signingKey: key }, { sessionId: s.id }),
      dir,
    );
    expect(existsSync(join(dir, 'sessions', `${s.id}.cast`))).toBe(false);
    expect(lines(await verifyEvidenceDir(dir))).toEqual([
      `MISSING sessions/${s.id}.cast: at export: the recorded path ${outside} is outside the recordings directory; not exported`,
    ]);
  });

  it('an open session: exports what was recorded when the export began, even as the file grows', async () => {
    const s = await recordedSession(g, g.other, castV2([[0.1, 'o', 'a']]), Buffer.from('abc'), { open: true });
    const plan = await planEvidence({ sessions: g.store.sessions, approvals: g.approvals, audit: g.store.audit, recordingsDir: g.recordingsDir, signingKey: key }, { sessionId: s.id });
    appendFileSync(join(g.recordingsDir, g.other.id, `${s.id}.raw`), 'more');
    appendFileSync(join(g.recordingsDir, g.other.id, `${s.id}.cast`), '[0.2,"o","b"]\n');
    const dir = fresh();
    await writeEvidenceDir(plan, dir);
    expect(lines(await verifyEvidenceDir(dir))).toEqual([]);
    expect(readFileSync(join(dir, 'sessions', `${s.id}.raw`), 'utf8')).toBe('abc');
  });

  it('a file rewritten between hashing and writing fails the export', async () => {
    const s = await recordedSession(g, g.other, castV2([[0.1, 'o', 'a']]), Buffer.from('abc'));
    const plan = await planEvidence({ sessions: g.store.sessions, approvals: g.approvals, audit: g.store.audit, recordingsDir: g.recordingsDir, signingKey: key }, { sessionId: s.id });
    writeFileSync(join(g.recordingsDir, g.other.id, `${s.id}.raw`), 'xyz');
    await expect(writeEvidenceDir(plan, fresh())).rejects.toThrow(/changed while it was being exported/);
  });
});

describe('the archive form', () => {
  it('is a ustar archive under evidence-<approval-id>/ that unpacks to a directory that verifies', async () => {
    const plan = await planEvidence(sources(), { approvalId: f.approval.id });
    const parts: Buffer[] = [];
    for await (const c of evidenceTar(plan)) parts.push(c);
    const archive = Buffer.concat(parts);
    expect(archive.length).toBe(evidenceTarSize(plan));
    const file = join(out, 'evidence.tar');
    writeFileSync(file, archive);
    const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).trim().split('\n');
    expect(listing[0]).toBe(`evidence-${f.approval.id}/`);
    expect(listing).toContain(`evidence-${f.approval.id}/manifest.json`);
    expect(listing).toContain(`evidence-${f.approval.id}/sessions/${f.sessions[0]!.id}.raw`);
    // GNU tar's extraction verifies too.
    const gnu = fresh();
    mkdirSync(gnu);
    execFileSync('tar', ['-xf', file, '-C', gnu]);
    expect((await verifyEvidenceDir(join(gnu, `evidence-${f.approval.id}`))).ok).toBe(true);
    // And so does ours.
    const dir = fresh();
    const result = await unpackEvidenceTar([archive], dir);
    expect(result).toMatchObject({ name: `evidence-${f.approval.id}`, files: 10 });
    expect(lines(await verifyEvidenceDir(dir))).toEqual([]);
  });

  it('the unpacker refuses entries outside the one top folder', async () => {
    const { tarChunks } = await import('./tar.js');
    const parts: Buffer[] = [];
    for await (const c of tarChunks([
      { type: 'file', name: 'evidence-a/x', size: 1, body: () => [Buffer.from('x')] },
      { type: 'file', name: 'evidence-b/y', size: 1, body: () => [Buffer.from('y')] },
    ]))
      parts.push(c);
    await expect(unpackEvidenceTar([Buffer.concat(parts)], fresh())).rejects.toThrow(/not under evidence-a\//);
  });
});

describe('recordings made by the real recorder', () => {
  let g: Fixture;
  beforeAll(async () => {
    g = await fixture('kb-evidence-recorder-');
  });
  afterAll(() => g?.close());

  async function record(approvalId: string | null, format: 'v2' | 'v3'): Promise<Session> {
    const s = await g.store.sessions.start({
      approvalId,
      agent: g.agent,
      operation: 'exec',
      transport: 'websocket',
      protocol: 'v5.channel.k8s.io',
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      command: ['cat', '/bin/true'],
      tty: false,
    });
    const rec = createRecorder({
      dir: g.recordingsDir,
      approvalId,
      sessionId: s.id,
      format,
      recordStdin: true,
      fsyncIntervalMs: 0,
      header: { agent: 'claude', namespace: 'demo', pod: 'web-0', container: 'app', command: ['cat', '/bin/true'], tty: false, transport: 'websocket', protocol: 'v5.channel.k8s.io' },
    });
    rec.stdout!(Buffer.from('text, then binary: '));
    rec.stdout!(Buffer.from([0xff, 0xfe, 0x00, 0xe2, 0x82]));
    rec.stdout!(Buffer.from([0xac, 0x0a]));
    rec.stderr!(Buffer.from('warning\n'));
    rec.end({ reason: 'completed', exitCode: 0, status: { metadata: {}, status: 'Success' }, bytesIn: 0, bytesOut: 33 });
    const result = await rec.finished;
    await g.store.sessions.end(s.id, { endReason: 'completed', exitCode: 0, status: null, bytesIn: 0, bytesOut: 33 });
    return g.store.sessions.setRecording(s.id, toSessionRecording(result));
  }

  it('exports them as recorded (byte for byte, hashes as stored) and converted, and both verify', async () => {
    const v2 = await record(g.approval.id, 'v2');
    const v3 = await record(g.approval.id, 'v3');
    const unapproved = await record(null, 'v2');
    expect(unapproved.castPath).toContain(`${join(g.recordingsDir, '_none')}`);
    const src = { sessions: g.store.sessions, approvals: g.approvals, audit: g.store.audit, recordingsDir: g.recordingsDir, signingKey: key };
    for (const format of [undefined, 'v2', 'v3'] as const) {
      const dir = fresh();
      await writeEvidenceDir(await planEvidence(src, { approvalId: g.approval.id, ...(format ? { format } : {}) }), dir);
      expect(lines(await verifyEvidenceDir(dir)), String(format)).toEqual([]);
      for (const s of [v2, v3]) {
        const cast = readFileSync(join(dir, 'sessions', `${s.id}.cast`), 'utf8');
        const same = format === undefined || (format === 'v2') === (s === v2);
        if (same) expect(sha(cast)).toBe(s.castSha256);
        expect(JSON.parse(cast.split('\n')[0]!)).toMatchObject({ version: format === undefined ? (s === v2 ? 2 : 3) : Number(format.slice(1)) });
        expect(sha(readFileSync(join(dir, 'sessions', `${s.id}.raw`)))).toBe(s.rawSha256);
      }
    }
    const one = fresh();
    await writeEvidenceDir(await planEvidence(src, { sessionId: unapproved.id }), one);
    expect(lines(await verifyEvidenceDir(one))).toEqual([]);
    expect(files(one)).toEqual(['audit.jsonl', MANIFEST_FILE, SIGNATURE_FILE, `sessions/${unapproved.id}.cast`, `sessions/${unapproved.id}.json`, `sessions/${unapproved.id}.raw`].sort());
  });
});

describe('port-forward sessions', () => {
  let g: Fixture;
  beforeAll(async () => {
    g = await fixture('kb-evidence-forward-');
  });
  afterAll(() => g?.close());

  it("carry each forwarded connection's raw sidecar, hashed in the manifest, in approval and session exports; verify checks them", async () => {
    const approval = await g.approvals.grant(
      { agent: 'claude', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080, 6379] }, ttlSeconds: 600, reason: 'INC-7' },
      { kind: 'user', name: 'alice', role: 'approver' },
    );
    const s = await forwardedSession(g, approval, [
      { port: 8080, in: 'GET / HTTP/1.1\r\n\r\n', out: 'HTTP/1.1 200 OK\r\n\r\n' },
      { port: 22, refused: 'port 22 is not among the approved ports (6379, 8080)' },
      { port: 6379, in: 'PING\r\n', out: '+PONG\r\n' },
    ]);
    const src = { sessions: g.store.sessions, approvals: g.approvals, audit: g.store.audit, recordingsDir: g.recordingsDir, signingKey: key, policyVersions: g.store.policyVersions };
    for (const req of [{ approvalId: approval.id }, { sessionId: s.id }]) {
      const dir = fresh();
      await writeEvidenceDir(await planEvidence(src, req), dir);
      expect(lines(await verifyEvidenceDir(dir)), JSON.stringify(req)).toEqual([]);
      expect(files(dir)).toEqual(
        ['approval.json', 'audit.jsonl', MANIFEST_FILE, 'record.json', SIGNATURE_FILE, `sessions/${s.id}.json`, `sessions/${s.id}/1.raw`, `sessions/${s.id}/3.raw`].sort(),
      );
      const m = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), 'utf8')) as Manifest;
      const row = JSON.parse(readFileSync(join(dir, 'sessions', `${s.id}.json`), 'utf8')) as { connections: { seq: number; rawSha256: string | null }[] };
      expect(row.connections.map((c) => c.seq)).toEqual([1, 2, 3]);
      for (const seq of [1, 3]) {
        const bytes = readFileSync(join(dir, 'sessions', s.id, `${seq}.raw`));
        expect(m.files.find((x) => x.path === `sessions/${s.id}/${seq}.raw`)).toEqual({ path: `sessions/${s.id}/${seq}.raw`, size: bytes.length, sha256: sha(bytes) });
        expect(sha(bytes)).toBe(row.connections[seq - 1]!.rawSha256);
      }
      const record = JSON.parse(readFileSync(join(dir, 'record.json'), 'utf8')) as { sessions: { connections: { port: number; inScope: boolean }[] }[] };
      expect(record.sessions[0]!.connections.map((c) => [c.port, c.inScope])).toEqual([
        [8080, true],
        [22, false],
        [6379, true],
      ]);
      // One changed byte of a connection's sidecar is named by verify.
      const raw = join(dir, 'sessions', s.id, '3.raw');
      writeFileSync(raw, readFileSync(raw, 'utf8').replace('PONG', 'PANG'));
      expect(lines(await verifyEvidenceDir(dir))).toEqual([expect.stringMatching(new RegExp(`^MISMATCH sessions/${s.id}/3\\.raw: sha256 [0-9a-f]{64} \\(manifest: [0-9a-f]{64}\\)$`))]);
    }

    // Changed on the bastion after the connection ended: a signed problem.
    appendFileSync(join(g.recordingsDir, approval.id, `${s.id}.1.raw`), 'tampered');
    const dir = fresh();
    await writeEvidenceDir(await planEvidence(src, { sessionId: s.id }), dir);
    expect(lines(await verifyEvidenceDir(dir))).toEqual([
      expect.stringMatching(new RegExp(`^MISMATCH sessions/${s.id}/1\\.raw: at export: the bastion's file has sha256 [0-9a-f]{64}, but the sha256 recorded when the session ended is [0-9a-f]{64}`)),
    ]);
  });
});

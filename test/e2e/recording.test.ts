// Recordings of real kubectl sessions through the bastion: byte-exact casts (multi-byte characters
// split across frames), what Debian's asciinema prints, the raw sidecar for binary output, the file
// list of kubectl cp, and a recordings directory that cannot be written.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKubectl } from '../helpers/kubectl.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { outputText, parseCast, readRawSidecar, RawChannel } from '../../src/recording/index.js';
import type { Approval } from '../../src/model/approval.js';
import type { Session } from '../../src/store/index.js';
import { generateSigningKey } from '../../src/evidence/signing-key.js';
import { encodeManifest, signManifest, type Manifest } from '../../src/evidence/manifest.js';

let b: TestBastion;
let token: string;

beforeAll(async () => {
  b = await startTestBastion();
  token = (await b.bastion.store.users.createUser('rec-approver', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

async function grant(pod: string, container: string, ttlSeconds = 300): Promise<Approval> {
  const res = await fetch(`${b.bastion.controlUrl}/v1/approvals`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ agent: b.agentName, namespace: 'demo', pod, container, verbs: ['exec'], ttlSeconds, reason: 'recording tests' }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Approval;
}

/** The ended session of an approval whose command matches, once its recording hashes are stored. */
async function endedSession(approvalId: string, command: (argv: string[]) => boolean = () => true): Promise<Session> {
  let found: Session | undefined;
  await expect
    .poll(async () => {
      found = (await b.bastion.store.sessions.list({ approvalId })).find((s) => command(s.command));
      return Boolean(found?.state === 'ended' && found.castSha256 && found.channelSha256);
    }, { timeout: 10_000 })
    .toBe(true);
  return found!;
}

// Multi-byte characters written a few bytes at a time, with pauses, so frames end mid-character.
const SPLIT_OUTPUT = [
  "printf '\\342\\202'; sleep 0.05; printf '\\254 euro, '; sleep 0.05",
  "printf '\\360\\237'; sleep 0.05; printf '\\230\\200 smile, '; sleep 0.05",
  "printf '\\346\\227'; sleep 0.05; printf '\\245\\346\\234\\254\\350\\252\\236 nihongo, '; sleep 0.05",
  "printf '\\303'; sleep 0.05; printf '\\274ber\\n'",
].join('; ');

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('recordings of kubectl $label sessions', ({ minor }) => {
  it('the cast output equals what kubectl printed, byte for byte, with characters split across frames', async () => {
    const approval = await grant('web-0', 'app');
    const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', SPLIT_OUTPUT] });
    expect(r.code).toBe(0);
    expect(r.stdout.toString('utf8')).toBe('€ euro, 😀 smile, 日本語 nihongo, über\n');
    const session = await endedSession(approval.id, (argv) => !argv[2]!.includes('>&2'));
    const cast = parseCast(readFileSync(session.castPath!, 'utf8'));
    expect(cast.version).toBe(2);
    expect(Buffer.from(outputText(cast.events), 'utf8').equals(r.stdout)).toBe(true);
    // The frames really were split mid-character: some stdout frame alone is not valid UTF-8.
    const frames = readRawSidecar(readFileSync(session.rawPath!)).records.filter((rec) => rec.channel === RawChannel.stdout);
    const invalidAlone = frames.filter((rec) => {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(rec.data);
        return false;
      } catch {
        return true;
      }
    });
    expect(invalidAlone.length).toBeGreaterThanOrEqual(4);
    expect(session.channelSha256!.stdout).toBe(sha256(r.stdout));
    expect(session.castSha256).toBe(sha256(readFileSync(session.castPath!)));
    expect(cast.header.extra).toMatchObject({ kube_bastion: { approval: approval.id, session: session.id, agent: b.agentName, pod: 'web-0', container: 'app' } });

    // stderr is recorded the same way (kubectl prints it on its own stderr).
    const errRun = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', `(${SPLIT_OUTPUT}) >&2`] });
    expect(errRun.code).toBe(0);
    const errSession = await endedSession(approval.id, (argv) => argv[2]!.includes('>&2'));
    const errCast = parseCast(readFileSync(errSession.castPath!, 'utf8'));
    expect(Buffer.from(outputText(errCast.events), 'utf8').equals(Buffer.from(errRun.stderr, 'utf8'))).toBe(true);
    expect(errSession.channelSha256!.stderr).toBe(sha256(errRun.stderr));

    // Debian's asciinema (reads asciicast v2) prints the same bytes. It wants a terminal: run it under script.
    const out = join(mkdtempSync(join(tmpdir(), 'kb-asciinema-')), 'out');
    execFileSync('script', ['-qec', `asciinema cat ${session.castPath} > ${out}`, '/dev/null'], { env: { ...process.env, HOME: tmpdir(), TERM: 'xterm' } });
    expect(readFileSync(out).equals(r.stdout)).toBe(true);
  });

  it('1 MiB of random bytes: the sidecar holds them exactly and the stored SHA-256 matches what kubectl received', async () => {
    const approval = await grant('web-0', 'app');
    const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'head', '-c', '1048576', '/dev/urandom'] });
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(1048576);
    const session = await endedSession(approval.id);
    const raw = readRawSidecar(readFileSync(session.rawPath!));
    const stdout = Buffer.concat(raw.records.filter((rec) => rec.channel === RawChannel.stdout).map((rec) => rec.data));
    expect(stdout.equals(r.stdout)).toBe(true);
    expect(session.channelSha256!.stdout).toBe(sha256(r.stdout));
    expect(session.rawSha256).toBe(sha256(readFileSync(session.rawPath!)));
    // The cast does not carry the bytes as text: binary markers count them, the sidecar has them.
    const cast = parseCast(readFileSync(session.castPath!, 'utf8'), 'v2');
    const binary = cast.events.filter((e) => e.code === 'm' && e.data.startsWith('binary output on stdout: '));
    expect(binary.length).toBeGreaterThan(0);
    expect(binary.every((e) => e.data.endsWith(`bytes, kept in ${session.id}.raw`))).toBe(true);
    const marked = binary.reduce((n, e) => n + Number(/: (\d+) bytes/.exec(e.data)![1]), 0);
    // Random bytes can hold a valid UTF-8 stretch: what is not marked is exactly the o text.
    expect(marked + Buffer.byteLength(outputText(cast.events))).toBe(r.stdout.length);
    expect(statSync(session.castPath!).size).toBeLessThan(r.stdout.length / 4);
  });
  it('text, binary and NUL bytes in one session: the cast (text events and binary markers, in order) with the sidecar gives back exactly what kubectl received', async () => {
    const approval = await grant('web-0', 'app');
    const script = "printf 'hello\\n'; sleep 0.05; head -c 8192 /dev/urandom; sleep 0.05; printf 'nul:\\000\\000\\001 end\\n'";
    const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', script] });
    expect(r.code).toBe(0);
    const session = await endedSession(approval.id, (argv) => argv[2] === script);
    const sidecar = Buffer.concat(readRawSidecar(readFileSync(session.rawPath!)).records.filter((rec) => rec.channel === RawChannel.stdout).map((rec) => rec.data));
    expect(sidecar.equals(r.stdout)).toBe(true);
    // docs/recording.md: an o event's text is its bytes; a binary marker stands for the next N bytes of the channel in the sidecar.
    const cast = parseCast(readFileSync(session.castPath!, 'utf8'), 'v2');
    const rebuilt: Buffer[] = [];
    let at = 0;
    for (const e of cast.events) {
      const bin = e.code === 'm' ? /^binary output on stdout: (\d+) bytes, kept in /.exec(e.data) : null;
      const part = e.code === 'o' ? Buffer.from(e.data, 'utf8') : bin ? sidecar.subarray(at, at + Number(bin[1])) : undefined;
      if (!part) continue;
      if (e.code === 'o') expect(sidecar.subarray(at, at + part.length).equals(part)).toBe(true);
      rebuilt.push(part);
      at += part.length;
    }
    expect(Buffer.concat(rebuilt).equals(r.stdout)).toBe(true);
    expect(cast.events.some((e) => e.code === 'm' && e.data.startsWith('binary output on stdout: '))).toBe(true);
  });
  it('NUL and control bytes are text (valid UTF-8): escaped in the cast, not a binary marker', async () => {
    // A session of its own: output that arrives in one chunk with the random bytes above is marked
    // binary as a whole (how chunks arrive depends on the machine's load).
    const approval = await grant('web-0', 'app');
    const script = "printf 'nul:\\000\\000\\001 end\\n'";
    const r = await runKubectl({ minor, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', script] });
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.from('nul:\0\0\x01 end\n', 'latin1'))).toBe(true);
    const session = await endedSession(approval.id, (argv) => argv[2] === script);
    const cast = parseCast(readFileSync(session.castPath!, 'utf8'), 'v2');
    expect(outputText(cast.events)).toBe('nul:\u0000\u0000\u0001 end\n');
    expect(readFileSync(session.castPath!, 'latin1')).toContain('nul:\\u0000\\u0000\\u0001 end\\n"]');
    expect(cast.events.some((e) => e.code === 'm' && e.data.startsWith('binary output'))).toBe(false);
  });
});

describe('kubectl cp through the bastion', () => {
  it('records the files copied into and out of a pod with sizes and hashes', async () => {
    const approval = await grant('web-0', 'app');
    const dir = mkdtempSync(join(tmpdir(), 'kb-cp-'));
    const payload = Buffer.concat([Buffer.from('payload for kubectl cp\n'), Buffer.alloc(70_000, 7)]);
    writeFileSync(join(dir, 'report.bin'), payload);
    const into = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['cp', join(dir, 'report.bin'), 'demo/web-0:report.bin', '-c', 'app'] });
    expect(into.stderr).toBe('');
    expect(into.code).toBe(0);
    const isTar = (argv: string[]) => argv[0] === 'tar' || argv.join(' ').includes('tar cf');
    const copyIn = await endedSession(approval.id, isTar);
    expect(copyIn.files).toEqual([{ name: 'report.bin', size: payload.length, sha256: sha256(payload) }]);

    const back = join(dir, 'back.bin');
    const out = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['cp', 'demo/web-0:report.bin', back, '-c', 'app'] });
    expect(out.code).toBe(0);
    expect(readFileSync(back).equals(payload)).toBe(true);
    const copyOut = await endedSession(approval.id, (argv) => isTar(argv) && argv.join(' ').includes('cf'));
    expect(copyOut.files).toEqual([{ name: 'report.bin', size: payload.length, sha256: sha256(payload) }]);
    const cast = readFileSync(copyOut.castPath!, 'utf8');
    expect(cast).toContain('report.bin');
  });
});

describe('a recordings directory that cannot be written', () => {
  it('cuts the session before any byte flows, with a Status saying why', async () => {
    const approval = await grant('shell-0', 'main');
    // The approval's folder points into /proc, where no file can be created.
    mkdirSync(b.bastion.config.recordingsDir, { recursive: true });
    symlinkSync('/proc/self/fdinfo', join(b.bastion.config.recordingsDir, approval.id));
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'shell-0', '--', 'echo', 'must not run'] });
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr).toContain(`approval ${approval.id}: the recording could not be written`);
    await expect.poll(async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).map((s) => s.endReason)).toEqual(['recording-failed']);
  });
});

describe('evidence export of a real session, with the built CLI', () => {
  it('export then verify passes; one changed byte in a cast or in the manifest is named', async () => {
    const { execFile } = await import('node:child_process');
    const { resolve } = await import('node:path');
    // The reviewer's own trust file, where a first pinned verify records the bastion's key.
    const config = mkdtempSync(join(tmpdir(), 'kb-config-'));
    // Asynchronous: the control endpoint runs in this process and must keep serving.
    const cli = (...args: string[]) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((done) => {
        execFile(process.execPath, [resolve('bin/kube-bastion.js'), ...args], { env: { ...process.env, KUBE_BASTION_URL: b.bastion.controlUrl, KUBE_BASTION_TOKEN: token, XDG_CONFIG_HOME: config } }, (err, stdout, stderr) =>
          done({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const approval = await grant('web-0', 'app');
    const r = await runKubectl({ minor: 33, kubeconfig: b.agentKubeconfig, args: ['exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo evidence-$((1+1)); exit 3'] });
    expect(r.code).toBe(3);
    const session = await endedSession(approval.id);
    const out = join(mkdtempSync(join(tmpdir(), 'kb-evidence-')), 'bundle');
    const exported = await cli('export', '--approval', approval.id, '--out', out, '--quiet');
    expect(exported.stderr).toBe('');
    expect(exported.status).toBe(0);
    // Nothing pinned: the bundle's own key vouches for nothing.
    const unpinned = await cli('verify', out);
    expect(unpinned.status).toBe(1);
    expect(unpinned.stdout).toContain(`the bundle is signed by key ${b.bastion.signingKey.fingerprint}, which only the bundle itself vouches for`);
    // The fingerprint the bastion publishes, pinned once (the trust file remembers it).
    const published = (await (await fetch(`${b.bastion.controlUrl}/v1/signing-key`)).json()) as { fingerprint: string; keyId: string };
    expect(published).toMatchObject({ fingerprint: b.bastion.signingKey.fingerprint, keyId: b.bastion.signingKey.keyId });
    const pinned = await cli('verify', out, '--fingerprint', published.fingerprint);
    expect(pinned.stdout).toMatch(/^OK: \d+ files, signed by key [0-9a-f]{16} \(SHA256:\S+, pinned with --fingerprint\); \d+ signed audit checkpoints? agrees? with its audit rows\npinned key /);
    expect((await cli('verify', out)).stdout).toMatch(/^OK: \d+ files, signed by key [0-9a-f]{16} \(SHA256:\S+, pinned in /);
    const json = JSON.parse(readFileSync(join(out, 'sessions', `${session.id}.json`), 'utf8'));
    expect(json).toMatchObject({ id: session.id, approvalId: approval.id, agent: b.agentName, state: 'ended', endReason: 'completed', exitCode: 3 });
    const castFile = join(out, 'sessions', `${session.id}.cast`);
    expect(outputText(parseCast(readFileSync(castFile, 'utf8')).events)).toBe('evidence-2\n');

    const original = readFileSync(castFile);
    const flipped = Buffer.from(original);
    flipped[flipped.length - 3]! ^= 0x01;
    writeFileSync(castFile, flipped);
    const broken = await cli('verify', out);
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain(`MISMATCH sessions/${session.id}.cast`);
    writeFileSync(castFile, original);

    const manifest = join(out, 'manifest.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"version"', '"Version"'));
    const forged = await cli('verify', out);
    expect(forged.status).toBe(1);
    expect(forged.stdout).toContain('manifest.json');
    writeFileSync(manifest, readFileSync(manifest, 'utf8').replace('"Version"', '"version"'));

    // The cast edited, the manifest re-hashed and re-signed with a new key: self-consistent, and
    // refused with no argument once the bastion's key is pinned.
    const forger = generateSigningKey();
    writeFileSync(castFile, flipped);
    const m = JSON.parse(readFileSync(manifest, 'utf8')) as Manifest;
    const entry = m.files.find((x) => x.path === `sessions/${session.id}.cast`)!;
    entry.sha256 = createHash('sha256').update(flipped).digest('hex');
    entry.size = flipped.length;
    m.key = { id: forger.keyId, algorithm: 'Ed25519', publicKeyPem: forger.publicKeyPem };
    const bytes = encodeManifest(m);
    writeFileSync(manifest, bytes);
    writeFileSync(join(out, 'manifest.sig'), signManifest(bytes, forger));
    const resigned = await cli('verify', out);
    expect(resigned.status).toBe(1);
    expect(resigned.stdout).toContain(`UNTRUSTED KEY manifest.json: the bundle is signed by key ${forger.fingerprint} which is not the bastion's pinned key (pinned: ${b.bastion.signingKey.fingerprint}, from ${join(config, 'kube-bastion', 'trusted-keys')})`);
  });
});

// Fault suite: the recording of an idle session parks its descriptors (2 s without a write). Real
// kubectl, real bastion: parked and woken twice, the recording is exactly what kubectl sent and
// printed and the row's hashes describe the files; with its sidecar replaced meanwhile (another
// file renamed over it), the next keystroke is not relayed (the container never echoes it),
// kubectl gets the recording-failed Status, the other file is not written to, and the session
// ends recording-failed.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { grantExec, until } from '../helpers/faults.js';
import { fdsOn } from '../helpers/fds.js';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
import { outputText, parseCast } from '../../src/recording/index.js';
import { recordingPaths } from '../../src/recording/recorder.js';

let b: TestBastion;
let alice: string;

beforeAll(async () => {
  b = await startTestBastion();
  alice = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterAll(async () => {
  await b?.stop();
});

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** `kubectl exec -i ... cat` under a fresh grant, with its stdin open; the test types and reads. */
async function catSession(minor: number) {
  const approval = await grantExec(b, alice, 'web-0', 'app', 300);
  const kubectl = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, 'exec', '-i', '-n', 'demo', 'web-0', '-c', 'app', '--', 'cat'], {
    env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
  });
  const seen = { out: '', err: '' };
  kubectl.stdout.on('data', (d: Buffer) => (seen.out += d.toString()));
  kubectl.stderr.on('data', (d: Buffer) => (seen.err += d.toString()));
  kubectl.stdin.on('error', () => {});
  const exited = new Promise<number | null>((resolve) => kubectl.on('close', (code) => resolve(code)));
  const typeAndSee = async (line: string, printed: string): Promise<void> => {
    kubectl.stdin.write(line);
    await until(`the echo of ${JSON.stringify(line)}`, () => seen.out === printed);
  };
  const session = async () => until('the session row', async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).find((s) => s.state === 'open'));
  /** The open session's row and its recording files, once both files are parked (no descriptor on either). */
  const parked = async () => {
    const row = await session();
    const paths = recordingPaths(b.bastion.config.recordingsDir, approval.id, row.id);
    await until('both recording files parked', () => fdsOn(paths.rawPath) + fdsOn(paths.castPath) === 0);
    return { session: row, rawPath: paths.rawPath, castPath: paths.castPath };
  };
  const endedRow = (id: string) => until('the session row ended', async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).find((s) => s.id === id && s.state === 'ended' && (s.endReason !== 'completed' || s.castSha256)));
  return { approval, kubectl, seen, exited, typeAndSee, parked, endedRow };
}

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('kubectl $label: a parked recording', ({ minor }) => {
  it('parked and woken twice: the recording is exactly what kubectl typed and printed; the row hashes describe the files', async () => {
    const c = await catSession(minor);
    try {
      await c.typeAndSee('one\n', 'one\n');
      const { session, rawPath, castPath } = await c.parked();
      await c.typeAndSee('two\n', 'one\ntwo\n');
      await c.parked();
      await c.typeAndSee('three\n', 'one\ntwo\nthree\n');
      c.kubectl.stdin.end();
      expect(await c.exited).toBe(0);
      const ended = await c.endedRow(session.id);
      expect(ended.endReason).toBe('completed');
      expect(ended.rawSha256).toBe(sha256(readFileSync(rawPath)));
      expect(ended.castSha256).toBe(sha256(readFileSync(castPath)));
      expect(ended.channelSha256).toMatchObject({ stdin: sha256('one\ntwo\nthree\n'), stdout: sha256(c.seen.out) });
      expect(outputText(parseCast(readFileSync(castPath, 'utf8')).events)).toBe(c.seen.out);
    } finally {
      c.kubectl.kill('SIGKILL');
    }
  });

  it('its sidecar replaced while parked: the next keystroke is not relayed; kubectl gets the recording-failed Status; the other file is untouched', async () => {
    const c = await catSession(minor);
    try {
      await c.typeAndSee('before\n', 'before\n');
      const { session, rawPath, castPath } = await c.parked();

      writeFileSync(`${rawPath}.other`, 'not the recording\n');
      renameSync(`${rawPath}.other`, rawPath);
      c.kubectl.stdin.write('after\n');
      const code = await c.exited;

      expect(code).not.toBe(0);
      expect(c.seen.out).toBe('before\n');
      expect(c.seen.err).toContain('the recording could not be written');
      expect(c.seen.err).toContain('not the file this recording wrote');
      expect(readFileSync(rawPath, 'utf8')).toBe('not the recording\n');
      expect((await c.endedRow(session.id)).endReason).toBe('recording-failed');
    } finally {
      c.kubectl.kill('SIGKILL');
    }
  });
});

// Fault suite: the recording of an idle session has parked its descriptors (2 s without a write),
// and its sidecar is replaced meanwhile (another file renamed over it). Real kubectl, real
// bastion: the next keystroke is not relayed (the container never echoes it), kubectl gets the
// recording-failed Status, the other file is not written to, and the session ends recording-failed.
import { spawn } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { grantExec, until } from '../helpers/faults.js';
import { fdsOn } from '../helpers/fds.js';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
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

describe.each([
  { label: '1.27 (SPDY)', minor: 27 },
  { label: '1.33 (WebSocket)', minor: 33 },
])('kubectl $label: a parked recording whose sidecar was replaced', ({ minor }) => {
  it('the next keystroke is not relayed; kubectl gets the recording-failed Status; the other file is untouched', async () => {
    const approval = await grantExec(b, alice, 'web-0', 'app', 300);
    const kubectl = spawn(kubectlPath(minor), ['--kubeconfig', b.agentKubeconfig, 'exec', '-i', '-n', 'demo', 'web-0', '-c', 'app', '--', 'cat'], {
      env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
    });
    let out = '';
    let err = '';
    kubectl.stdout.on('data', (d: Buffer) => (out += d.toString()));
    kubectl.stderr.on('data', (d: Buffer) => (err += d.toString()));
    kubectl.stdin.on('error', () => {});
    const exited = new Promise<number | null>((resolve) => kubectl.on('close', (code) => resolve(code)));
    try {
      kubectl.stdin.write('before\n');
      await until('the echo of the first line', () => out === 'before\n');
      const session = await until('the session row', async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).find((s) => s.state === 'open'));
      const { rawPath, castPath } = recordingPaths(b.bastion.config.recordingsDir, approval.id, session.id);
      await until('both recording files parked', () => fdsOn(rawPath) + fdsOn(castPath) === 0);

      writeFileSync(`${rawPath}.other`, 'not the recording\n');
      renameSync(`${rawPath}.other`, rawPath);
      kubectl.stdin.write('after\n');
      const code = await exited;

      expect(code).not.toBe(0);
      expect(out).toBe('before\n');
      expect(err).toContain('the recording could not be written');
      expect(err).toContain('not the file this recording created');
      expect(readFileSync(rawPath, 'utf8')).toBe('not the recording\n');
      const ended = await until('the session row ended', async () => (await b.bastion.store.sessions.list({ approvalId: approval.id })).find((s) => s.id === session.id && s.state === 'ended'));
      expect(ended.endReason).toBe('recording-failed');
    } finally {
      kubectl.kill('SIGKILL');
    }
  });
});

// An exec that asks for no stderr (or no stdin) gets none: the sim's process has /dev/null there,
// not a pipe the sim holds open (as from the kubelet, which creates only the requested streams).
// kubectl always asks for stderr without a TTY, so the client here is the repo's own executor.
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { startSimForFile } from '../helpers/sim.js';
import { type UpstreamTarget } from '../../src/upstream/upstream.js';
import { dialUpstreamExec } from '../../src/upstream/executor.js';

let upstream: UpstreamTarget;
startSimForFile((_started, u) => (upstream = u));

function execPath(command: string[], flags: { stdin: boolean; stderr: boolean }): string {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  q.set('container', 'app');
  q.set('stdout', 'true');
  if (flags.stdin) q.set('stdin', 'true');
  if (flags.stderr) q.set('stderr', 'true');
  return `/api/v1/namespaces/demo/pods/web-0/exec?${q.toString()}`;
}

/** The process's fds 0 and 2 as readlink shows them (the shell execs into cat when stdin is open). */
const SHOW_FDS = 'readlink /proc/$$/fd/0 /proc/$$/fd/2; echo lost >&2';

function collect(stream: Readable): () => string {
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString()));
  return () => text;
}

describe('exec streams the client did not ask for', () => {
  it('stdin and stdout without stderr: stderr is /dev/null, output still flows through cat', async () => {
    const session = await dialUpstreamExec(upstream, { path: execPath(['sh', '-c', `${SHOW_FDS}; exec cat`], { stdin: true, stderr: false }) });
    const out = collect(session.stdout);
    session.stdin!.end('through cat\n');
    const status = await session.status;
    await session.closed;
    expect(status).toEqual({ metadata: {}, status: 'Success' });
    expect(out()).toMatch(/^(pipe|socket):\[\d+\]\n\/dev\/null\nthrough cat\n$/);
  });

  it('stdout only: stdin and stderr are both /dev/null', async () => {
    const session = await dialUpstreamExec(upstream, { path: execPath(['sh', '-c', `${SHOW_FDS}; exit 3`], { stdin: false, stderr: false }) });
    expect(session.stdin).toBeNull();
    const out = collect(session.stdout);
    const status = await session.status;
    await session.closed;
    expect(status.reason).toBe('NonZeroExitCode');
    expect(status.details?.causes).toEqual([{ reason: 'ExitCode', message: '3' }]);
    expect(out()).toBe('/dev/null\n/dev/null\n');
  });

  it('with stderr asked for, stderr is a pipe and carries what the process writes there', async () => {
    const session = await dialUpstreamExec(upstream, { path: execPath(['sh', '-c', SHOW_FDS], { stdin: false, stderr: true }) });
    const out = collect(session.stdout);
    const err = collect(session.stderr);
    const ended = new Promise((r) => session.stderr.once('end', r));
    const status = await session.status;
    await ended;
    expect(status).toEqual({ metadata: {}, status: 'Success' });
    expect(out()).toMatch(/^\/dev\/null\n(pipe|socket):\[\d+\]\n$/);
    expect(err()).toBe('lost\n');
  });
});

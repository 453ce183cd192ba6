// The upstream exec/attach client against the real simulated cluster (WebSocket v5/v4, real
// processes and PTYs behind it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { SimCluster } from '../sim/cluster.js';
import type { Readable } from 'node:stream';
import { exitCodeOf, type Status } from '../protocol/status.js';
import { isBastionError, UpstreamRefusal } from '../errors/index.js';
import { startSimForFile, type StartedSim } from '../../test/helpers/sim.js';
import { upstreamFromCredentials, type UpstreamTarget } from './upstream.js';
import { impersonationHeaders } from './headers.js';
import { dialUpstreamExec, OUTPUT_HIGH_WATER_MARK, type UpstreamSession } from './executor.js';

let started: StartedSim;
let upstream: UpstreamTarget;
startSimForFile((s, u) => {
  started = s;
  upstream = u;
});

function execPath(command: string[], flags: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean } = {}, pod = 'web-0', container = 'app'): string {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  q.set('container', container);
  for (const k of ['stdin', 'stdout', 'stderr', 'tty'] as const) {
    const v = flags[k] ?? (k === 'stdout' || k === 'stderr');
    if (v) q.set(k, 'true');
  }
  return `/api/v1/namespaces/demo/pods/${pod}/exec?${q.toString()}`;
}

function collect(stream: Readable): () => Buffer {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return () => Buffer.concat(chunks);
}

/** Resolves once `stream`'s text so far matches `pattern` (or rejects after `ms`). */
function waitForOutput(read: () => Buffer, stream: Readable, pattern: RegExp, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      const text = read().toString('utf8');
      if (!pattern.test(text)) return false;
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(text);
      return true;
    };
    const onData = (): void => void check();
    const timer = setTimeout(() => {
      stream.off('data', onData);
      reject(new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(read().toString('utf8').slice(-500))}`));
    }, ms);
    stream.on('data', onData);
    setImmediate(check);
  });
}

async function dialRejection(target: UpstreamTarget, path: string): Promise<unknown> {
  try {
    const s = await dialUpstreamExec(target, { path });
    s.destroy();
  } catch (err) {
    return err;
  }
  throw new Error('dial unexpectedly succeeded');
}

describe('dialUpstreamExec against the simulated cluster', () => {
  it('echoes 4 MiB of random bytes through cat; stdin end sends v5 CLOSE and cat exits with Success', async () => {
    const session = await dialUpstreamExec(upstream, { path: execPath(['cat'], { stdin: true }) });
    expect(session.protocol).toBe('v5.channel.k8s.io');
    expect(session.canHalfCloseStdin).toBe(true);
    expect(session.stdin).not.toBeNull();
    const out = collect(session.stdout);
    const err = collect(session.stderr);
    const input = randomBytes(4 * 1024 * 1024);
    const stdin = session.stdin!;
    // Writes of assorted sizes, honouring backpressure.
    for (let off = 0; off < input.length; ) {
      const size = Math.min(input.length - off, 1 + ((off * 7919) % 100_000));
      if (!stdin.write(input.subarray(off, off + size))) await new Promise((r) => stdin.once('drain', r));
      off += size;
    }
    stdin.end();
    const status = await session.status;
    await session.closed;
    expect(status).toEqual({ metadata: {}, status: 'Success' });
    expect(out().length).toBe(input.length);
    expect(out().equals(input)).toBe(true);
    expect(err().length).toBe(0);
  });

  it('reports exit code 7 as a NonZeroExitCode Status, with stderr kept apart from stdout', async () => {
    const session = await dialUpstreamExec(upstream, { path: execPath(['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 7']) });
    expect(session.stdin).toBeNull();
    const out = collect(session.stdout);
    const err = collect(session.stderr);
    const ended = Promise.all([new Promise((r) => session.stdout.once('end', r)), new Promise((r) => session.stderr.once('end', r))]);
    const status = await session.status;
    await ended;
    expect(status.status).toBe('Failure');
    expect(status.reason).toBe('NonZeroExitCode');
    expect(status.details?.causes).toEqual([{ reason: 'ExitCode', message: '7' }]);
    expect(exitCodeOf(status)).toBe(7);
    expect(out().toString()).toBe('to-stdout\n');
    expect(err().toString()).toBe('to-stderr\n');
  });

  it('runs a TTY exec whose terminal size follows resize()', async () => {
    const session = await dialUpstreamExec(upstream, { path: execPath(['sh'], { stdin: true, stdout: true, stderr: false, tty: true }) });
    const out = collect(session.stdout);
    // The sim waits for the first size before starting the process, as kubelet's TTY exec does.
    session.resize({ width: 100, height: 30 });
    session.stdin!.write('stty size\n');
    await waitForOutput(out, session.stdout, /(^|\s)30 100\r?\n/);
    session.resize({ width: 132, height: 43 });
    // Give the resize a moment to reach the PTY before asking again.
    await new Promise((r) => setTimeout(r, 100));
    session.stdin!.write('stty size\n');
    await waitForOutput(out, session.stdout, /(^|\s)43 132\r?\n/);
    session.stdin!.write('exit 0\n');
    const status = await session.status;
    expect(status.status).toBe('Success');
  });

  it('attaches to demo/shell-0 (tty), types a command, sees its output and leaves the container running', async () => {
    const path = '/api/v1/namespaces/demo/pods/shell-0/attach?container=main&stdin=true&stdout=true&tty=true';
    const session = await dialUpstreamExec(upstream, { path });
    expect(session.protocol).toBe('v5.channel.k8s.io');
    const out = collect(session.stdout);
    session.resize({ width: 90, height: 25 });
    session.stdin!.write('echo attach-ok-$((6*7))\n');
    await waitForOutput(out, session.stdout, /attach-ok-42/);
    session.destroy();
    const status = await session.status;
    expect(status.status).toBe('Failure');
    expect(status.message).toMatch(/destroyed/);
    await session.closed;

    // The container's shell is still there for the next attach.
    const again = await dialUpstreamExec(upstream, { path });
    const out2 = collect(again.stdout);
    again.stdin!.write('echo still-here-$((2+3))\n');
    await waitForOutput(out2, again.stdout, /still-here-5/);
    again.destroy();
    await again.closed;
  });

  it('speaks v4 when only v4 is offered (a command that exits by itself)', async () => {
    const session = await dialUpstreamExec(upstream, {
      path: execPath(['sh', '-c', 'echo over-v4; echo e >&2; exit 3']),
      protocols: ['v4.channel.k8s.io'],
    });
    expect(session.protocol).toBe('v4.channel.k8s.io');
    expect(session.canHalfCloseStdin).toBe(false);
    const out = collect(session.stdout);
    const err = collect(session.stderr);
    const status = await session.status;
    expect(exitCodeOf(status)).toBe(3);
    expect(out().toString()).toBe('over-v4\n');
    expect(err().toString()).toBe('e\n');
  });

  it('v4: stdin end() sends nothing (no half-close) and the session still ends when the process exits', async () => {
    const session = await dialUpstreamExec(upstream, {
      path: execPath(['sh', '-c', 'head -c 5; echo; exit 0'], { stdin: true }),
      protocols: ['v4.channel.k8s.io'],
    });
    const out = collect(session.stdout);
    session.stdin!.end('hello');
    await new Promise((r) => session.stdin!.once('finish', r));
    const status = await session.status;
    expect(status.status).toBe('Success');
    expect(out().toString()).toBe('hello\n');
  });

  it('speaks the base64 variant too', async () => {
    const session = await dialUpstreamExec(upstream, {
      path: execPath(['sh', '-c', 'cat; exit 4'], { stdin: true }),
      protocols: ['v4.base64.channel.k8s.io'],
    });
    expect(session.protocol).toBe('v4.base64.channel.k8s.io');
    const out = collect(session.stdout);
    session.stdin!.write(Buffer.from([0, 1, 2, 255, 10]));
    await waitForOutput(out, session.stdout, /\n/);
    session.destroy();
    await session.closed;
    expect([...out()]).toEqual([0, 1, 2, 255, 10]);
  });

  it('rejects a non-existent pod with upstream 404 NotFound Status as data', async () => {
    const err = await dialRejection(upstream, execPath(['true'], {}, 'no-such-pod'));
    expect(isBastionError(err, 'NOT_FOUND')).toBe(true);
    expect(err).toBeInstanceOf(UpstreamRefusal);
    const refusal = err as UpstreamRefusal;
    expect(refusal.upstreamHttpStatus).toBe(404);
    expect(refusal.status.code).toBe(404);
    expect(refusal.status.reason).toBe('NotFound');
    expect(refusal.status.message).toBe('pods "no-such-pod" not found');
    expect((err as Error).message).toBe('pods "no-such-pod" not found');
  });

  it('rejects a bad container with upstream 400 BadRequest', async () => {
    const err = await dialRejection(upstream, execPath(['true'], {}, 'web-0', 'nope'));
    expect(isBastionError(err, 'BAD_REQUEST')).toBe(true);
    expect((err as UpstreamRefusal).status.message).toMatch(/container nope is not valid/);
  });

  it('rejects a bad token with upstream 401 Unauthorized Status', async () => {
    const bad = upstreamFromCredentials(started.sim.url, started.sim.caPem, 'not-the-token', 'sim (bad token)');
    const err = await dialRejection(bad, execPath(['true']));
    expect(isBastionError(err, 'UNAUTHENTICATED')).toBe(true);
    const status = (err as UpstreamRefusal).status;
    expect(status.code).toBe(401);
    expect(status.reason).toBe('Unauthorized');
  });

  it('rejects an unreachable upstream with UPSTREAM_UNAVAILABLE', async () => {
    // A port nobody listens on (the sim's, after binding a fresh one would race; use port 1).
    const dead = upstreamFromCredentials('https://127.0.0.1:1', started.sim.caPem, 'x', 'dead');
    const err = await dialRejection(dead, execPath(['true']));
    expect(isBastionError(err, 'UPSTREAM_UNAVAILABLE')).toBe(true);
  });

  it('sends the credentials and the caller headers (impersonation) upstream, not the ws defaults it must not', async () => {
    const from = started.sim.requests.entries.length;
    const session = await dialUpstreamExec(upstream, {
      path: execPath(['true']),
      headers: impersonationHeaders({ user: 'agent:ci-bot', extra: { 'kube-bastion/session': 'abc' } }) as Record<string, string>,
    });
    await session.status;
    const entry = started.sim.requests.entries.slice(from).find((e) => e.upgrade);
    expect(entry?.method).toBe('GET');
    expect(entry?.headers['authorization']).toBe('<redacted>');
    expect(entry?.headers['impersonate-user']).toBe('agent:ci-bot');
    expect(entry?.headers['impersonate-extra-kube-bastion%2fsession']).toBe('abc');
    expect(entry?.headers['sec-websocket-protocol']).toBe('v5.channel.k8s.io');
    expect(entry?.headers['sec-websocket-extensions']).toBeUndefined();
  });

  it('destroy() mid-stream stops delivery at once, resolves status/closed, and leaves other sessions alone', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const bystander = await dialUpstreamExec(upstream, { path: execPath(['cat'], { stdin: true }) });
      const bystanderOut = collect(bystander.stdout);

      const session = await dialUpstreamExec(upstream, { path: execPath(['sh', '-c', 'while :; do head -c 65536 /dev/zero; done']) });
      let afterDestroy = 0;
      let destroyed = false;
      let received = 0;
      await new Promise<void>((resolve) => {
        session.stdout.on('data', (chunk: Buffer) => {
          if (destroyed) {
            afterDestroy += chunk.length;
            return;
          }
          received += chunk.length;
          if (received > 512 * 1024) {
            destroyed = true;
            session.destroy();
            resolve();
          }
        });
      });
      const status = await session.status;
      await session.closed;
      await new Promise((r) => setTimeout(r, 200));
      expect(afterDestroy).toBe(0);
      expect(status.status).toBe('Failure');
      expect(session.stdout.destroyed).toBe(true);
      // Chunks already buffered in the Readable are not delivered after destroy() either.
      const buffered = await dialUpstreamExec(upstream, { path: execPath(['sh', '-c', 'while :; do head -c 65536 /dev/zero; done']) });
      while (buffered.stdout.readableLength < OUTPUT_HIGH_WATER_MARK) await new Promise((r) => setTimeout(r, 5));
      let events = 0;
      buffered.stdout.on('data', () => {
        events++;
        buffered.destroy();
      });
      await buffered.closed;
      await new Promise((r) => setTimeout(r, 50));
      expect(events).toBe(1);

      // Calling it again, and resize afterwards, are harmless.
      session.destroy();
      session.resize({ width: 10, height: 10 });

      // The other session still works end to end.
      bystander.stdin!.end('still alive\n');
      expect((await bystander.status).status).toBe('Success');
      expect(bystanderOut().toString()).toBe('still alive\n');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a slow stdout consumer of 8 MiB gets every byte while buffering stays bounded', async () => {
    const size = 8 * 1024 * 1024;
    const file = `slow-${process.pid}-${Date.now()}.bin`;
    const session = await dialUpstreamExec(upstream, {
      path: execPath(['sh', '-c', `head -c ${size} /dev/urandom > ${file} && sha256sum ${file} >&2 && cat ${file}; rc=$?; rm -f ${file}; exit $rc`]),
    });
    const err = collect(session.stderr);
    const hash = createHash('sha256');
    let total = 0;
    let maxBuffered = 0;
    // A deliberately slow reader: one chunk every few milliseconds, in paused mode.
    await new Promise<void>((resolve, reject) => {
      const pump = (): void => {
        maxBuffered = Math.max(maxBuffered, session.stdout.readableLength);
        const chunk = (session.stdout.read(32 * 1024) ?? session.stdout.read()) as Buffer | null;
        if (chunk) {
          hash.update(chunk);
          total += chunk.length;
          setTimeout(pump, 3);
          return;
        }
        if (session.stdout.readableEnded) return resolve();
        session.stdout.once('readable', pump);
      };
      session.stdout.once('end', resolve);
      session.stdout.once('error', reject);
      pump();
    });
    const status = await session.status;
    expect(status.status).toBe('Success');
    expect(total).toBe(size);
    expect(err().toString().split(' ')[0]).toBe(hash.digest('hex'));
    // Backpressure engaged (the buffer reached its high-water mark) and held: at most the
    // high-water mark plus what one socket read can still deliver after pause().
    expect(maxBuffered).toBeGreaterThanOrEqual(OUTPUT_HIGH_WATER_MARK);
    expect(maxBuffered).toBeLessThanOrEqual(OUTPUT_HIGH_WATER_MARK + 512 * 1024);
  });
});

describe('dialUpstreamExec against a cluster that refuses v5 (an API server older than 1.30)', () => {
  let old: SimCluster;
  let oldUpstream: UpstreamTarget;
  beforeAll(async () => {
    old = new SimCluster({ maxRemoteCommandVersion: 4 });
    await old.start();
    oldUpstream = upstreamFromCredentials(old.url, old.caPem, old.token, 'old sim');
  });
  afterAll(async () => {
    await old?.stop();
  });

  it('falls back to SPDY v4: 4 MiB through cat come back, and stdin end() is the FIN that lets cat exit 0', async () => {
    const from = old.requests.entries.length;
    const session = await dialUpstreamExec(oldUpstream, { path: execPath(['cat'], { stdin: true }) });
    expect(session.protocol).toBe('v4.channel.k8s.io over SPDY/3.1');
    expect(session.canHalfCloseStdin).toBe(true);
    const out = collect(session.stdout);
    const input = randomBytes(4 * 1024 * 1024);
    session.stdin!.end(input);
    expect(await session.status).toEqual({ metadata: {}, status: 'Success' });
    await session.closed;
    expect(out().equals(input)).toBe(true);
    expect(old.requests.entries.slice(from).filter((e) => e.upgrade).map((e) => e.method)).toEqual(['GET', 'POST']);
  });

  it('TTY over the fallback: the terminal size follows resize(), exit code 4 arrives as data', async () => {
    const session = await dialUpstreamExec(oldUpstream, { path: execPath(['sh', '-c', 'read x; stty size; exit 4'], { stdin: true, tty: true, stderr: true }) });
    session.resize({ width: 101, height: 33 });
    const out = collect(session.stdout);
    await new Promise((r) => setTimeout(r, 100));
    session.stdin!.write('go\r');
    const status = await session.status;
    expect(exitCodeOf(status)).toBe(4);
    expect(out().toString('utf8')).toContain('33 101');
  });
});

// Keep the type import used (the API shape is part of what these tests pin down).
export type { UpstreamSession };

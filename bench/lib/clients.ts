// The clients the bench drives: real kubectl, and an efficient in-process exec client (the
// bastion's own upstream executor used as a client: ws with v5.channel.k8s.io, or SPDY/3.1 as
// kubectl 1.27 speaks it), plus a keep-alive HTTPS agent for REST.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import https from 'node:https';
import { freshHome, kubectlPath } from '../../test/helpers/kubectl.js';
import { upstreamFromCredentials } from '../../src/upstream/upstream.js';
import { dialUpstreamExec, dialUpstreamSpdyExec, type UpstreamSession } from '../../src/upstream/executor.js';
import { tlsOptions } from '../../src/upstream/executor/dial.js';
import { effectiveStreamOptions, parseRemoteCommandQuery } from '../../src/protocol/options.js';
import { ProtocolName } from '../../src/protocol/constants.js';
import type { Endpoint } from './procs.js';

export type Transport = 'spdy' | 'websocket';

export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  tty?: boolean;
  /** false: ask for no stderr stream (without a TTY the default is to ask for it, as kubectl does). */
  stderr?: boolean;
}

export function execPath(t: ExecTarget): string {
  const q = new URLSearchParams();
  for (const c of t.command) q.append('command', c);
  q.set('container', t.container);
  q.set('stdin', 'true');
  q.set('stdout', 'true');
  q.set('stderr', t.tty || t.stderr === false ? 'false' : 'true');
  if (t.tty) q.set('tty', 'true');
  return `/api/v1/namespaces/${t.namespace}/pods/${t.pod}/exec?${q}`;
}

/** Opens an exec session as a client of `endpoint`. */
export async function openExec(endpoint: Endpoint, transport: Transport, t: ExecTarget): Promise<UpstreamSession> {
  const target = upstreamFromCredentials(endpoint.url, endpoint.caPem, endpoint.token, endpoint.label);
  const path = execPath(t);
  if (transport === 'websocket') return dialUpstreamExec(target, { path, protocols: [ProtocolName.v5], keepAliveMs: 0 });
  const base = await target.requestOptions();
  return dialUpstreamSpdyExec({
    server: endpoint.url,
    base,
    tls: tlsOptions(base),
    path,
    options: effectiveStreamOptions(parseRemoteCommandQuery(new URLSearchParams(path.split('?')[1]))),
    keepAliveMs: 0,
  });
}

/** A `cat` session that failed to start: how it ended (its Status), or that it never echoed. */
export class CatNotRunning extends Error {
  override readonly name = 'CatNotRunning';
}

const READY_LINE = 'ready\n';

/**
 * Opens a `cat` session (`t.command` must echo its stdin) and resolves once it runs: a line written
 * to its stdin has come back. A WebSocket open resolves at the endpoint's 101, and the bastion
 * answers that before it dials upstream (so before the cluster has started the process): a client
 * that opens N at a time without this wait leaves any number of setups in flight behind its back,
 * and the last of them queue past the bastion's setup timeout (bench/README.md, *Open questions*).
 * The session's stdout has had exactly the line when this resolves.
 */
export async function openRunningCat(endpoint: Endpoint, t: ExecTarget, timeoutMs = 30_000): Promise<UpstreamSession> {
  const s = await openExec(endpoint, 'websocket', t);
  let seen = '';
  let onData = (_d: Buffer): void => {};
  let timer: NodeJS.Timeout | undefined;
  const echoed = new Promise<void>((resolve, reject) => {
    onData = (d: Buffer): void => {
      seen += d.toString('latin1');
      if (seen === READY_LINE) resolve();
      else if (!READY_LINE.startsWith(seen)) reject(new CatNotRunning(`unexpected output before the echo: ${JSON.stringify(seen.slice(0, 80))}`));
    };
    s.stdout.on('data', onData);
    void s.status.then((st) => reject(new CatNotRunning(`${st.reason ?? st.status}: ${st.message ?? ''}`)));
    timer = setTimeout(() => reject(new CatNotRunning(`no echo in ${timeoutMs / 1000} s`)), timeoutMs);
  });
  s.stdin!.write(READY_LINE);
  try {
    await echoed;
    return s;
  } catch (err) {
    s.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
    s.stdout.off('data', onData);
  }
}

export interface TransferResult {
  ms: number;
  outBytes: number;
  sha256: string;
}

/** `cat` of `input` through an efficient client: writes with backpressure, hashes what comes back. */
export async function catWithClient(endpoint: Endpoint, transport: Transport, input: Buffer): Promise<TransferResult> {
  const t0 = performance.now();
  const s = await openExec(endpoint, transport, { namespace: 'demo', pod: 'web-0', container: 'app', command: ['cat'] });
  const hash = createHash('sha256');
  let outBytes = 0;
  s.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    outBytes += d.length;
  });
  s.stderr.resume();
  const stdin = s.stdin!;
  const CHUNK = 256 * 1024;
  for (let off = 0; off < input.length; off += CHUNK) {
    if (!stdin.write(input.subarray(off, off + CHUNK))) await new Promise((r) => stdin.once('drain', r));
  }
  stdin.end();
  const done = new Promise<void>((resolve) => s.stdout.once('end', resolve));
  const status = await s.status;
  await done;
  if (status.status !== 'Success') throw new Error(`${endpoint.label} ${transport} client: ${status.message ?? JSON.stringify(status)}`);
  return { ms: performance.now() - t0, outBytes, sha256: hash.digest('hex') };
}

const KUBECTL_MINOR: Record<Transport, number> = { spdy: 27, websocket: 33 };

/** `kubectl exec -i -- cat` of `input`; hashes stdout as it comes. */
export function catWithKubectl(endpoint: Endpoint, transport: Transport, input: Buffer): Promise<TransferResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(kubectlPath(KUBECTL_MINOR[transport]), ['--kubeconfig', endpoint.kubeconfig, 'exec', '-i', '-n', 'demo', 'web-0', '-c', 'app', '--', 'cat'], {
      env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
    });
    const hash = createHash('sha256');
    let outBytes = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      hash.update(d);
      outBytes += d.length;
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${endpoint.label} kubectl 1.${KUBECTL_MINOR[transport]} exited ${code}: ${err.slice(0, 500)}`));
      else resolve({ ms: performance.now() - t0, outBytes, sha256: hash.digest('hex') });
    });
  });
}

/** Wall-clock milliseconds with sub-millisecond precision (comparable with Date.parse of server times). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A keystroke-echo probe: a TTY session running cat in raw mode, one byte out, the same byte back. */
export class EchoProbe {
  private waiting: ((at: number) => void) | undefined;
  private constructor(private readonly s: UpstreamSession) {
    s.stdout.on('data', () => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(performance.now());
    });
  }

  static async open(endpoint: Endpoint): Promise<EchoProbe> {
    const s = await openExec(endpoint, 'websocket', { namespace: 'demo', pod: 'shell-0', container: 'main', command: ['sh', '-c', 'stty raw -echo; echo ready; exec cat'], tty: true });
    const probe = new EchoProbe(s);
    // Wait for the "ready" line (the terminal is raw from then on).
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const onData = (d: Buffer): void => {
        seen += d.toString();
        if (seen.includes('ready')) {
          s.stdout.off('data', onData);
          resolve();
        }
      };
      s.stdout.on('data', onData);
      setTimeout(() => reject(new Error(`${endpoint.label}: echo probe not ready in 15 s (${JSON.stringify(seen)})`)), 15_000).unref();
    });
    await new Promise((r) => setTimeout(r, 50)); // let the rest of the banner pass
    return probe;
  }

  /** One keystroke's round trip in ms. */
  async sample(): Promise<number> {
    const t0 = performance.now();
    const back = new Promise<number>((resolve, reject) => {
      this.waiting = resolve;
      setTimeout(() => reject(new Error('echo not seen in 10 s')), 10_000).unref();
    });
    this.s.stdin!.write('x');
    return (await back) - t0;
  }

  close(): void {
    this.s.destroy();
  }
}

export function restAgent(endpoint: Endpoint, maxSockets: number): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets, ca: endpoint.caPem });
}

/** One GET; resolves with the body length once it is fully read. */
export function restGet(endpoint: Endpoint, agent: https.Agent, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.get(`${endpoint.url}${path}`, { agent, headers: { Authorization: `Bearer ${endpoint.token}`, Accept: 'application/json' } }, (res) => {
      let n = 0;
      res.on('data', (d: Buffer) => (n += d.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${endpoint.label} GET ${path}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

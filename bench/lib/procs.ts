// The processes a bench run measures: the sim, the bastion, nginx, the node pipe and proxy, the floor's TLS
// echo and relays; their CPU time and RSS from /proc.
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLoopbackServingMaterial } from '../../src/tls/ca.js';
import { writeKubeconfig } from '../../src/app/kubeconfig.js';
import { RELAY_TLS_FILES } from './context.js';

export interface Endpoint {
  /** pipe: the node pipe (startNodePipe); proxy: the node proxy (startNodeProxy). */
  label: 'direct' | 'nginx' | 'pipe' | 'proxy' | 'bastion';
  url: string;
  caPem: string;
  token: string;
  kubeconfig: string;
  /** Processes whose CPU time is this endpoint's cost (none for direct: the sim serves every endpoint). */
  pids: () => number[];
}

export interface BastionEndpoint extends Endpoint {
  controlUrl: string;
  approverToken: string;
  agent: string;
  recordings: string;
}

export interface Server<T> {
  info: T;
  child: ChildProcess;
  stop(): Promise<void>;
}

const SERVERS = fileURLToPath(new URL('../servers.ts', import.meta.url));

async function forkServer<T>(args: string[], nodeFlags: string[] = []): Promise<Server<T>> {
  // process.execArgv carries tsx's loader, so the child runs the TypeScript sources too.
  const child = fork(SERVERS, args, { execArgv: [...process.execArgv, ...nodeFlags], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<T>((resolve, reject) => {
    child.once('message', (m: { ready?: T }) => (m.ready ? resolve(m.ready) : reject(new Error(`unexpected message ${JSON.stringify(m)}`))));
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
  return {
    info,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.send('stop');
      }),
  };
}

/** Node flags from an environment variable (space-separated), e.g. `--import FILE` for a preload module. */
function flagsFrom(name: string): string[] {
  return process.env[name] ? process.env[name].split(' ') : [];
}

export function startSim(dir: string, pods: number) {
  return forkServer<{ url: string; caPem: string; token: string; kubeconfig: string }>(['sim', dir, String(pods)], flagsFrom('BENCH_SIM_FLAGS'));
}

/** `from`: the bastion's code from the TypeScript sources (`src`, through tsx) or from `npm run build`'s output (`dist`, as `serve` runs). */
export function startBastionProcess(dir: string, upstreamKubeconfig: string, cpuProfDir: string | undefined, from: 'src' | 'dist') {
  const flags = [...(cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : []), ...flagsFrom('BENCH_BASTION_FLAGS')];
  return forkServer<Omit<BastionEndpoint, 'label' | 'pids'>>(['bastion', dir, upstreamKubeconfig, from], flags);
}

export type FloorVariant = 'plain' | 'hash';

export interface FloorServers {
  /** CA of the relays' (and the echo's) serving certificate. */
  caPem: string;
  echo: Server<{ port: number }>;
  relays: Record<FloorVariant, Server<{ port: number }>>;
}

/**
 * The floor measure's processes: one TLS echo, and one TLS relay per variant in front of it (a
 * process per variant, so whatever a connection leaves behind, GC or teardown, is billed to its
 * own variant). TLS material as the sim and the bastion make their own: a loopback CA and cert.
 */
export async function startFloorServers(dir: string): Promise<FloorServers> {
  const root = join(dir, 'floor');
  mkdirSync(root, { recursive: true });
  const tls = await createLoopbackServingMaterial('kube-bastion bench floor CA');
  writeRelayTls(root, tls.ca.cert, tls.serving);
  // All three start at once (the smoke run's floor must take seconds): the echo's port is chosen here.
  const echoPort = await freePort();
  const started = await Promise.allSettled([
    forkServer<{ port: number }>(['tls-echo', root, String(echoPort)]),
    ...(['plain', 'hash'] as const).map((v) => forkServer<{ port: number }>(['tls-relay', root, `127.0.0.1:${echoPort}`, v])),
  ]);
  const [echo, plain, hash] = started.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  if (!echo || !plain || !hash) {
    await Promise.all([echo, plain, hash].map((s) => s?.stop()));
    throw (started.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
  }
  return { caPem: tls.ca.cert, echo, relays: { plain, hash } };
}

function writeRelayTls(root: string, upstreamCa: string, serving: { cert: string; key: string }): void {
  writeFileSync(join(root, RELAY_TLS_FILES.ca), upstreamCa);
  writeFileSync(join(root, RELAY_TLS_FILES.cert), serving.cert);
  writeFileSync(join(root, RELAY_TLS_FILES.key), serving.key, { mode: 0o600 });
}

/**
 * The node pipe: the floor's bare TLS relay (servers.ts tls-relay, plain: TLS terminated on both
 * legs, bytes piped, no framing, no recording) placed in front of the sim as nginx is, so the exec
 * clients reach the sim through it. A comparator: the best a Node relay terminating TLS on both
 * legs does with these clients, measured beside the bastion. Its own serving CA; it verifies the
 * sim against the sim's CA (nginx does not verify its upstream).
 */
export function startNodePipe(dir: string, sim: { url: string; caPem: string; token: string }): Promise<Server<Endpoint>> {
  return startInFrontOfSim(dir, sim, 'pipe', (root, upstream) => ['tls-relay', root, upstream, 'plain']);
}

/**
 * The node proxy: a bare Node HTTP reverse proxy (servers.ts http-proxy: node:https server,
 * node:https.request upstream on a keep-alive Agent, headers passed, bodies piped; no auth, policy
 * or audit) in front of the sim, for the REST measure: what any Node HTTP proxy terminating TLS on
 * both legs costs per request, measured beside the bastion. TLS material and kubeconfig as the
 * node pipe's.
 */
export function startNodeProxy(dir: string, sim: { url: string; caPem: string; token: string }): Promise<Server<Endpoint>> {
  return startInFrontOfSim(dir, sim, 'proxy', (root, upstream) => ['http-proxy', root, upstream]);
}

/** A servers.ts role in front of the sim: its own loopback CA and serving cert, the sim's CA for its upstream, a kubeconfig with the sim's token. */
async function startInFrontOfSim(dir: string, sim: { url: string; caPem: string; token: string }, label: 'pipe' | 'proxy', args: (root: string, upstream: string) => string[]): Promise<Server<Endpoint>> {
  const root = join(dir, label);
  mkdirSync(root, { recursive: true });
  const tls = await createLoopbackServingMaterial(`kube-bastion bench node ${label} CA`);
  writeRelayTls(root, sim.caPem, tls.serving);
  const server = await forkServer<{ port: number }>(args(root, new URL(sim.url).host));
  const url = `https://127.0.0.1:${server.info.port}`;
  const kubeconfig = join(dir, `${label}.kubeconfig`);
  await writeKubeconfig(kubeconfig, { server: url, caPem: tls.ca.cert, token: sim.token, name: label });
  return { ...server, info: { label, url, caPem: tls.ca.cert, token: sim.token, kubeconfig, pids: () => [server.child.pid!] } };
}

/** utime and stime of a process in seconds (0 once it is gone). */
export function cpuTimes(pid: number): { user: number; sys: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 }; // USER_HZ is 100 on Linux
  } catch {
    return { user: 0, sys: 0 };
  }
}

/** utime + stime of a process in seconds (0 once it is gone). */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.sys;
}

export function totalCpu(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/** Children of a process (nginx's workers). */
export function childPids(parent: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The children of `parent` whose command name (`/proc/PID/comm`) is `comm`, oldest first. */
export function childrenNamed(parent: number, comm: string): number[] {
  return childPids(parent).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Bytes of every file below a directory. */
export function diskBytes(dir: string): number {
  let total = 0;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of entries) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    total += st.isDirectory() ? diskBytes(path) : st.size;
  }
  return total;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function nginxBinary(): string | undefined {
  for (const path of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
    if (spawnSync(path, ['-v']).status === 0) return path;
  }
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

/**
 * nginx as a plain TLS reverse proxy in front of the sim: HTTP/1.1 upstream with keep-alive,
 * any Upgrade (WebSocket and SPDY/3.1) passed through, no buffering either way, one worker (the
 * bastion is one event loop too), no access log.
 */
export async function startNginx(binary: string, dir: string, sim: { url: string; token: string }): Promise<Server<Endpoint>> {
  const root = join(dir, 'nginx');
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o777);
  const tls = await createLoopbackServingMaterial('kube-bastion bench nginx CA');
  writeFileSync(join(root, 'cert.pem'), tls.serving.cert);
  writeFileSync(join(root, 'key.pem'), tls.serving.key, { mode: 0o600 });
  const port = await freePort();
  const upstream = new URL(sim.url);
  const conf = `
worker_processes 1;
daemon off;
pid ${root}/nginx.pid;
error_log ${root}/error.log warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
worker_rlimit_nofile 30000;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${root}/body;
  proxy_temp_path ${root}/proxy;
  fastcgi_temp_path ${root}/fastcgi;
  uwsgi_temp_path ${root}/uwsgi;
  scgi_temp_path ${root}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream sim { server ${upstream.host}; keepalive 128; }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${root}/cert.pem;
    ssl_certificate_key ${root}/key.pem;
    client_max_body_size 0;
    location / {
      proxy_pass https://sim;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      proxy_ssl_server_name off;
      proxy_ssl_session_reuse on;
    }
  }
}
`;
  writeFileSync(join(root, 'nginx.conf'), conf);
  const child = spawn(binary, ['-p', root, '-c', join(root, 'nginx.conf')], { stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `https://127.0.0.1:${port}`;
  // Ready once it accepts TLS and answers for the sim.
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${readFileSync(join(root, 'error.log'), 'utf8').slice(-2000)}`);
    try {
      const res = await fetchWithCa(`${url}/healthz`, tls.ca.cert);
      if (res === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('nginx did not become ready in 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const kubeconfig = join(dir, 'nginx.kubeconfig');
  await writeKubeconfig(kubeconfig, { server: url, caPem: tls.ca.cert, token: sim.token, name: 'nginx' });
  return {
    info: { label: 'nginx', url, caPem: tls.ca.cert, token: sim.token, kubeconfig, pids: () => childPids(child.pid!) },
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGQUIT');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

async function fetchWithCa(url: string, ca: string): Promise<number> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.setTimeout(2000, () => req.destroy(new Error('timeout')));
  });
}

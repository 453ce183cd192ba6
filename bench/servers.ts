// The bench's server processes, one per process so each one's CPU and RSS are read from /proc apart
// from the clients': `sim` (the simulated cluster, plus BENCH_PODS extra pod objects in namespace
// `bench` for the REST LIST), `bastion` (the bastion as `serve` runs it, info log to a file,
// recording on, upstream = that sim through its kubeconfig), the floor measure's `tls-echo` (a
// TLS server on the port it is given, writing back every byte it reads, like `cat`), and
// `tls-relay` (a TLS server piping each connection to a TLS connection to the host:port it is
// given: the floor's echo, or the sim for the "node pipe" target; with `hash`, one SHA-256 per
// direction over every relayed byte), and `http-proxy` (the "node proxy": a bare Node HTTP reverse
// proxy in front of the sim, node:https server + node:https.request upstream on a keep-alive Agent,
// headers passed, bodies piped; no auth, policy or audit). Forked by bench/lib/procs.ts; each sends one
// 'ready' message with what the driver needs, and exits (writing a --cpu-prof profile if asked) on
// a 'stop' message. Each role imports what it needs when it starts: the floor's processes must not
// load (and carry the heap of) the bastion, and so start in a fraction of the time.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import type { SimCluster } from '../src/sim/cluster.js';
import type { KubeObject } from '../src/sim/store.js';
import { BENCH_NAMESPACE, RELAY_TLS_FILES } from './lib/context.js';

/** Pod objects only (no processes): the store is the sim's own, so LIST sees them like any pod. */
function seedPods(sim: SimCluster, count: number): void {
  const template = sim.store.get('pods', 'demo', 'web-0');
  if (!template) throw new Error('the sim has no demo/web-0 to copy');
  sim.store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: BENCH_NAMESPACE }, spec: {}, status: { phase: 'Active' } });
  for (let i = 0; i < count; i++) {
    const pod: KubeObject = structuredClone(template);
    const name = `pod-${String(i).padStart(4, '0')}`;
    pod.metadata = { name, namespace: BENCH_NAMESPACE, labels: { app: 'bench' } };
    sim.store.create('pods', pod);
  }
}

async function runSim(dir: string, pods: number): Promise<() => Promise<void>> {
  const { SimCluster } = await import('../src/sim/cluster.js');
  const { writeKubeconfig } = await import('../src/app/kubeconfig.js');
  const sim = new SimCluster({ host: '127.0.0.1', port: 0, onError: (err) => process.stderr.write(`sim: ${String(err)}\n`) });
  await sim.start();
  seedPods(sim, pods);
  const kubeconfig = join(dir, 'direct.kubeconfig');
  await writeKubeconfig(kubeconfig, { server: sim.url, caPem: sim.caPem, token: sim.token, name: 'direct' });
  process.send!({ ready: { url: sim.url, caPem: sim.caPem, token: sim.token, kubeconfig } });
  return () => sim.stop();
}

/**
 * Where the bastion's code is loaded from: `src`, the TypeScript sources through tsx (no build
 * needed), or `dist`, what `npm run build` compiled (what `serve` runs). tsx compiles with
 * esbuild's keepNames, which names every closure with a call as it is created: a cost per request
 * the shipped build does not have. Every module the bastion uses comes from the one tree (its
 * errors and classes are checked by identity).
 */
async function bastionModules(from: string) {
  if (from === 'src') {
    return {
      bastion: await import('../src/app/bastion.js'),
      config: await import('../src/app/config.js'),
      log: await import('../src/observability/log.js'),
      upstream: await import('../src/upstream/upstream.js'),
    };
  }
  if (from !== 'dist') throw new Error(`bastion: src or dist, not ${from}`);
  const dist = (path: string): string => new URL(`../dist/${path}`, import.meta.url).href;
  if (!existsSync(new URL(dist('app/bastion.js')))) throw new Error('bastion from dist: no dist/app/bastion.js; run `npm run build` first');
  return {
    bastion: (await import(dist('app/bastion.js'))) as typeof import('../src/app/bastion.js'),
    config: (await import(dist('app/config.js'))) as typeof import('../src/app/config.js'),
    log: (await import(dist('observability/log.js'))) as typeof import('../src/observability/log.js'),
    upstream: (await import(dist('upstream/upstream.js'))) as typeof import('../src/upstream/upstream.js'),
  };
}

async function runBastion(dir: string, upstreamKubeconfig: string, from: string): Promise<() => Promise<void>> {
  const { writeKubeconfig } = await import('../src/app/kubeconfig.js');
  const m = await bastionModules(from);
  const { startBastion } = m.bastion;
  const { parseServeConfig } = m.config;
  const { createLogger } = m.log;
  const { upstreamFromKubeconfigFile } = m.upstream;
  const config = parseServeConfig(
    ['--data-dir', join(dir, 'data'), '--recordings', join(dir, 'recordings'), '--listen', '127.0.0.1:0', '--control-listen', '127.0.0.1:0', '--upstream-kubeconfig', upstreamKubeconfig, '--hold-timeout', '60'],
    dir,
  );
  // serve logs at info; the bench keeps that cost but writes it to a file.
  const log = createLogger('info', createWriteStream(join(dir, 'bastion.log')));
  const bastion = await startBastion(config, log, upstreamFromKubeconfigFile(upstreamKubeconfig));
  const { token: agentToken } = await bastion.store.agents.createAgent('bench-agent');
  const kubeconfig = join(dir, 'bastion.kubeconfig');
  const caPem = bastion.tls.caPem!; // generated material always has its CA
  await writeKubeconfig(kubeconfig, { server: bastion.kubeUrl, caPem, token: agentToken, name: 'bastion' });
  const approver = (await bastion.store.users.createUser('bench-approver', 'approver')).token;
  process.send!({
    ready: { url: bastion.kubeUrl, caPem, token: agentToken, kubeconfig, controlUrl: bastion.controlUrl, approverToken: approver, agent: 'bench-agent', recordings: config.recordingsDir },
  });
  return () => bastion.stop();
}

/**
 * A relay's (or the echo's) TLS material, written by the driver (bench/lib/procs.ts): its serving
 * cert and key, and the CA it verifies its upstream against (the floor's one CA for both legs; the
 * sim's CA for the node pipe and the node proxy).
 */
function relayTls(dir: string): { ca: string; cert: string; key: string } {
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
  return { ca: read(RELAY_TLS_FILES.ca), cert: read(RELAY_TLS_FILES.cert), key: read(RELAY_TLS_FILES.key) };
}

/** Listens on a loopback port (0: any free one); resolves with it. */
function listen(server: tls.Server | https.Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

function closeServer(server: tls.Server | https.Server, sockets: Set<tls.TLSSocket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

/** Writes back every byte it reads, like `cat`; Node's default TLS settings. Listens on `port`. */
async function runTlsEcho(dir: string, port: number): Promise<() => Promise<void>> {
  const { cert, key } = relayTls(dir);
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert, key, allowHalfOpen: true }, (c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.on('error', () => c.destroy());
    c.pipe(c);
  });
  await listen(server, port);
  process.send!({ ready: { port } });
  return closeServer(server, sockets);
}

/** "HOST:PORT" (the last colon splits, so a bracketless IPv6 host is not supported: the bench is on 127.0.0.1). */
function hostPort(arg: string | undefined): { host: string; port: number } {
  const i = arg?.lastIndexOf(':') ?? -1;
  const port = Number(arg?.slice(i + 1));
  if (!arg || i <= 0 || !Number.isInteger(port) || port <= 0) throw new Error(`tls-relay: upstream HOST:PORT, not ${arg}`);
  return { host: arg.slice(0, i), port };
}

/**
 * The least a TLS relay of this design does: terminate TLS from the client, open a TLS connection
 * to the upstream (verified against the CA, default settings, like the bastion's upstream leg) and
 * pipe both ways; no framing, no recording. The upstream is the floor's echo, or the sim (the node
 * pipe target: HTTP, WebSocket and SPDY upgrades pass through as bytes). With `hash`, one SHA-256
 * per direction over every relayed byte, the least a recorder must do.
 */
async function runTlsRelay(dir: string, upstream: string | undefined, variant: string): Promise<() => Promise<void>> {
  if (variant !== 'plain' && variant !== 'hash') throw new Error(`tls-relay: variant plain or hash, not ${variant}`);
  const { host, port: upstreamPort } = hostPort(upstream);
  const { ca, cert, key } = relayTls(dir);
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert, key, allowHalfOpen: true }, (c) => {
    const u = tls.connect({ host, port: upstreamPort, ca });
    for (const s of [c, u]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
    }
    // One end gone takes the other with it, unless the pipe has already ended the other's writes
    // (it ends on 'end'): then its last bytes are still being flushed (an exec's final output and
    // Status, as the sim closes), and destroying it would cut them off.
    c.on('close', () => (sockets.delete(c), u.writableEnded || u.destroy()));
    u.on('close', () => (sockets.delete(u), c.writableEnded || c.destroy()));
    if (variant === 'hash') {
      const toEcho = createHash('sha256');
      const toClient = createHash('sha256');
      c.on('data', (d: Buffer) => toEcho.update(d));
      u.on('data', (d: Buffer) => toClient.update(d));
      c.once('end', () => toEcho.digest());
      u.once('end', () => toClient.digest());
    }
    c.pipe(u);
    u.pipe(c);
  });
  const port = await listen(server);
  process.send!({ ready: { port } });
  return closeServer(server, sockets);
}

/** Hop-by-hop headers (RFC 9110 7.6.1): per connection, never passed on by a proxy. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host']);

function endToEnd(headers: IncomingMessage['headers']): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

/**
 * The node proxy: the least a Node HTTP reverse proxy terminating TLS on both legs does per
 * request, for the REST measure's comparator. A node:https server; each request goes upstream with
 * node:https.request on one keep-alive Agent (verified against the sim's CA, Node's default TLS
 * settings, like the bastion's upstream leg), the client's end-to-end headers passed as they are
 * (the Authorization too: the sim's token is the client's), the request body piped up and the
 * response body piped back. No authentication, policy, audit, header allow-list or cut: what the
 * bastion does beyond this is its own cost. No upgrades (REST only).
 */
async function runHttpProxy(dir: string, upstream: string | undefined): Promise<() => Promise<void>> {
  const { host, port: upstreamPort } = hostPort(upstream);
  const { ca, cert, key } = relayTls(dir);
  // Idle upstream connections are closed after 3 s, before the sim closes them (Node's default
  // keepAliveTimeout, 5 s): a request sent on one the sim is closing just then fails with
  // ECONNRESET (a 502 here; the bastion retries such a GET once instead). As the REST clients do.
  const agent = new https.Agent({ keepAlive: true, ca, timeout: 3000 });
  const sockets = new Set<tls.TLSSocket>();
  const server = https.createServer({ cert, key }, (req: IncomingMessage, res: ServerResponse) => {
    const up = https.request({ host, port: upstreamPort, method: req.method, path: req.url, headers: endToEnd(req.headers), agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, endToEnd(ur.headers));
      ur.on('error', () => res.destroy());
      ur.pipe(res);
    });
    up.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    res.on('close', () => res.writableFinished || up.destroy());
    req.pipe(up);
  });
  server.on('secureConnection', (s: tls.TLSSocket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server);
  process.send!({ ready: { port } });
  const close = closeServer(server, sockets);
  return async () => {
    await close();
    agent.destroy();
  };
}

const [role, dir, arg, arg2] = process.argv.slice(2);
const ROLES: Record<string, () => Promise<() => Promise<void>>> = {
  sim: () => runSim(dir!, Number(arg ?? 0)),
  // bastion DIR KUBECONFIG [src|dist]
  bastion: () => runBastion(dir!, arg!, arg2 ?? 'src'),
  'tls-echo': () => runTlsEcho(dir!, Number(arg)),
  // tls-relay DIR HOST:PORT [plain|hash]
  'tls-relay': () => runTlsRelay(dir!, arg, arg2 ?? 'plain'),
  // http-proxy DIR HOST:PORT
  'http-proxy': () => runHttpProxy(dir!, arg),
};
const start = ROLES[role!];
if (!start) throw new Error(`unknown role ${role}; one of ${Object.keys(ROLES).join(', ')}`);
const stop = await start();
process.on('message', (m) => {
  if (m !== 'stop') return;
  void stop()
    .catch((err) => process.stderr.write(`${role} stop: ${String(err)}\n`))
    .finally(() => process.exit(0));
});
// The driver going away must not leave servers behind.
process.on('disconnect', () => process.exit(0));

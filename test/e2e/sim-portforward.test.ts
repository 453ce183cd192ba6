// Port-forward against the simulated cluster, directly (no bastion): real kubectl in each of the
// forms a real API server accepts (SPDY for 1.27, the WebSocket tunnel for 1.30 with the variable,
// 1.31 and 1.33, with no silent fallback), and a raw channel-protocol client (v4.channel.k8s.io,
// v4.base64.channel.k8s.io) as @kubernetes/client-node and browsers speak it. The pod's ports are
// real processes: demo/web-0's app answers HTTP on 8080, its sidecar echoes on 7000.
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { httpGet, kubectlPortForward, roundTrip, sha256, type Forward } from '../helpers/portforward.js';
import { startSim, type StartedSim } from '../helpers/sim.js';

let env: StartedSim;
beforeAll(async () => {
  env = await startSim();
});
afterAll(async () => {
  await env?.sim.stop();
});

/** Starts `kubectl port-forward` against the sim. */
function portForward(minor: number, extraEnv: Record<string, string>, remotePorts: number[]): Promise<Forward> {
  return kubectlPortForward({ minor, kubeconfig: env.kubeconfig, env: extraEnv, ports: remotePorts });
}

/** The port-forward upgrades the sim received since `from`, as "METHOD transport". */
function forwardsSince(from: number): string[] {
  return env.sim.requests.entries
    .slice(from)
    .filter((e) => e.path.split('?')[0]!.endsWith('/pods/web-0/portforward'))
    .map((e) => `${e.method} ${e.transport ?? 'none'}`);
}

const CLIENTS: Array<{ label: string; minor: number; env: Record<string, string>; expected: string }> = [
  { label: '1.27 (SPDY)', minor: 27, env: {}, expected: 'POST spdy' },
  { label: '1.30 with KUBECTL_PORT_FORWARD_WEBSOCKETS=true (tunnel)', minor: 30, env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'true' }, expected: 'GET websocket-tunnel' },
  { label: '1.31 (tunnel)', minor: 31, env: {}, expected: 'GET websocket-tunnel' },
  { label: '1.33 (tunnel)', minor: 33, env: {}, expected: 'GET websocket-tunnel' },
];

describe.each(CLIENTS)('kubectl $label port-forward to demo/web-0', (client) => {
  it('reaches the HTTP server on 8080 and echoes 8 MiB on 7000 byte for byte, over the expected transport only', async () => {
    const before = env.sim.requests.entries.length;
    const fwd = await portForward(client.minor, client.env, [8080, 7000]);
    try {
      const answer = await httpGet(fwd.local.get(8080)!, `/from-kubectl-1.${client.minor}`);
      expect(answer).toEqual({ status: 200, body: `hello from demo/web-0 (container app, port 8080): GET /from-kubectl-1.${client.minor}\n` });

      const input = randomBytes(8 * 1024 * 1024);
      const echoed = await roundTrip(fwd.local.get(7000)!, input);
      expect(echoed.length).toBe(input.length);
      expect(sha256(echoed)).toBe(sha256(input));
      // One upgrade for the whole session: a tunnel refused would show a POST fallback here.
      expect(forwardsSince(before)).toEqual([client.expected]);
    } finally {
      fwd.child.kill('SIGKILL');
      await fwd.exited;
    }
  });
});

describe('a port nothing listens on', () => {
  it('gets the runtime refusal on the error stream; kubectl 1.33 prints it and ends', async () => {
    const fwd = await portForward(33, {}, [9999]);
    const closed = await roundTrip(fwd.local.get(9999)!, Buffer.from('GET / HTTP/1.0\r\n\r\n')).catch(() => Buffer.alloc(0));
    expect(closed.length).toBe(0);
    const code = await fwd.exited;
    expect(code).toBe(1);
    expect(fwd.stderr()).toMatch(
      /an error occurred forwarding \d+ -> 9999: error forwarding port 9999 to pod [0-9a-f]{64}, uid : failed to execute portforward in network namespace .*failed to connect to localhost:9999 inside namespace .*IPv4: dial tcp4 127\.0\.0\.1:9999: connect: connection refused IPv6 dial tcp6 \[::1\]:9999: connect: connection refused/,
    );
    expect(fwd.stderr()).toContain('lost connection to pod');
  });
});

// ---- the channel protocol ----------------------------------------------------------------------

interface ChannelSession {
  ws: WebSocket;
  /** Every message as [channel, payload]. */
  messages: Array<[number, Buffer]>;
  closed: Promise<number>;
}

function openChannels(query: string, protocol: string): Promise<ChannelSession> {
  const base64 = protocol.includes('base64');
  const ws = new WebSocket(`${env.sim.url.replace('https', 'wss')}/api/v1/namespaces/demo/pods/web-0/portforward?${query}`, [protocol], {
    ca: env.sim.caPem,
    headers: { Authorization: `Bearer ${env.sim.token}` },
  });
  const messages: Array<[number, Buffer]> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    expect(isBinary).toBe(!base64);
    if (base64) messages.push([data[0]! - 0x30, Buffer.from(data.subarray(1).toString(), 'base64')]);
    else messages.push([data[0]!, data.subarray(1)]);
  });
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

const dataOn = (s: ChannelSession, channel: number) => Buffer.concat(s.messages.filter(([c]) => c === channel).map(([, p]) => p));

describe('a raw channel-protocol client', () => {
  it('v4.channel.k8s.io: port prefixes on channels 0 and 1, then the HTTP answer on channel 0', async () => {
    const before = env.sim.requests.entries.length;
    const s = await openChannels('ports=8080', 'v4.channel.k8s.io');
    expect(s.ws.protocol).toBe('v4.channel.k8s.io');
    s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('GET /raw HTTP/1.0\r\n\r\n')]));
    // HTTP/1.0: the server closes after answering, which ends the forward and the WebSocket.
    expect(await s.closed).toBe(1000);
    expect(s.messages.slice(0, 2)).toEqual([
      [0, Buffer.from([0x90, 0x1f])],
      [1, Buffer.from([0x90, 0x1f])],
    ]);
    const http = dataOn(s, 0).subarray(2).toString();
    expect(http).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(http.endsWith('hello from demo/web-0 (container app, port 8080): GET /raw\n')).toBe(true);
    expect(dataOn(s, 1).subarray(2).length).toBe(0);
    expect(forwardsSince(before)).toEqual(['GET websocket']);
  });

  it('v4.base64.channel.k8s.io with two ports: each its own channels; an unused port reports on its error channel', async () => {
    const s = await openChannels('ports=7000,9999', 'v4.base64.channel.k8s.io');
    const payload = randomBytes(100_000);
    s.ws.send('0' + payload.toString('base64'));
    await expect.poll(() => dataOn(s, 0).length, { timeout: 10_000 }).toBe(2 + payload.length);
    expect(sha256(dataOn(s, 0).subarray(2))).toBe(sha256(payload));
    expect(dataOn(s, 0).readUInt16LE(0)).toBe(7000);
    await expect.poll(() => dataOn(s, 3).subarray(2).toString(), { timeout: 10_000 }).toContain('failed to connect to localhost:9999');
    expect(dataOn(s, 2).readUInt16LE(0)).toBe(9999);
    s.ws.close();
    await s.closed;
  });

  it('refuses a request without ports, or with a bad one, before the upgrade', async () => {
    await expect(openChannels('', 'v4.channel.k8s.io')).rejects.toThrow('HTTP 400');
    await expect(openChannels('ports=0', 'v4.channel.k8s.io')).rejects.toThrow('HTTP 400');
    await expect(openChannels('ports=http', 'v4.channel.k8s.io')).rejects.toThrow('HTTP 400');
  });
});

describe('@kubernetes/client-node PortForward', () => {
  it('gets the HTTP answer of demo/web-0 over the channel protocol', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(env.kubeconfig);
    const output = new PassThrough();
    const errors = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    output.on('data', (d: Buffer) => out.push(d));
    errors.on('data', (d: Buffer) => err.push(d));
    const input = new PassThrough();
    const before = env.sim.requests.entries.length;
    const ws = (await new PortForward(kc).portForward('demo', 'web-0', [8080], output, errors, input)) as WebSocket;
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    expect(ws.protocol).toBe('v4.channel.k8s.io');
    input.write('GET /client-node HTTP/1.0\r\n\r\n');
    await closed;
    const http = Buffer.concat(out).toString();
    expect(http).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(http.endsWith('hello from demo/web-0 (container app, port 8080): GET /client-node\n')).toBe(true);
    expect(Buffer.concat(err).length).toBe(0);
    expect(forwardsSince(before)).toEqual(['GET websocket']);
  });
});

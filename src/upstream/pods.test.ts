// The pod lookup over a kept-alive connection: one the server drops just as it is reused (a race a
// loaded event loop widens; it failed 1 of 200 exec sessions in the cutoff bench) is tried again.
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLoopbackServingMaterial } from '../tls/ca.js';
import { isBastionError } from '../errors/index.js';
import { getPod } from './pods.js';
import { upstreamFromCredentials, type UpstreamTarget } from './upstream.js';

let server: https.Server;
let upstream: UpstreamTarget;
/** Which requests the server drops without an answer: the next one on a reused connection, every one, none. */
let dropReused: 'once' | 'all' | 'never' = 'never';
const served: string[] = [];

const pod = { metadata: { name: 'web-0', namespace: 'demo' }, spec: { containers: [{ name: 'app' }] } };

beforeAll(async () => {
  const tls = await createLoopbackServingMaterial('pods-test');
  server = https.createServer({ cert: tls.serving.cert, key: tls.serving.key }, (req, res) => {
    const socket = req.socket as typeof req.socket & { served?: number };
    socket.served = (socket.served ?? 0) + 1;
    if ((socket.served > 1 && dropReused === 'once') || dropReused === 'all') {
      if (dropReused === 'once') dropReused = 'never';
      served.push('dropped');
      socket.destroy();
      return;
    }
    served.push('answered');
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(pod));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  upstream = upstreamFromCredentials(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, tls.ca.cert, 'token', 'test');
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

it('a kept-alive connection dropped as it is reused: the lookup is tried once more on a new one and answers', async () => {
  served.length = 0;
  expect(await getPod(upstream, 'demo', 'web-0')).toMatchObject({ ok: true, pod: { name: 'web-0', containers: ['app'] } });
  dropReused = 'once';
  expect(await getPod(upstream, 'demo', 'web-0')).toMatchObject({ ok: true, pod: { name: 'web-0', containers: ['app'] } });
  expect(served).toEqual(['answered', 'dropped', 'answered']);
});

it('tried once more only: a server that drops every request is unreachable, said so', async () => {
  await getPod(upstream, 'demo', 'web-0');
  served.length = 0;
  dropReused = 'all';
  const err = await getPod(upstream, 'demo', 'web-0').catch((e: unknown) => e);
  dropReused = 'never';
  expect(isBastionError(err)).toBe(true);
  expect((err as Error).message).toMatch(/could not reach the upstream API server: socket hang up|ECONNRESET/);
  expect(served).toEqual(['dropped', 'dropped']);
});

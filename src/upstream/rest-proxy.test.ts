// The REST proxy over kept-alive upstream connections: a connection the server drops just as it is
// reused (its idle timeout racing the next request; the bench hit it as a 502 under load) costs a
// read one more try on a new connection. A request that may have an effect is never sent twice.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { createLoopbackServingMaterial } from '../tls/ca.js';
import { proxyRest } from './rest-proxy.js';
import { upstreamFromCredentials, type UpstreamTarget } from './upstream.js';

let upstreamServer: https.Server;
let front: http.Server;
let frontPort: number;
let upstream: UpstreamTarget;
/** Which requests upstream drops without an answer: the next one on a reused connection, every one, none. */
let dropReused: 'once' | 'all' | 'never' = 'never';
/** Upstream answers the next request on a reused connection with part of a status line and headers, then closes. */
let partialReused = false;
const served: string[] = [];
const POD = '/api/v1/namespaces/demo/pods/web-0';

beforeAll(async () => {
  const tls = await createLoopbackServingMaterial('rest-proxy-test');
  upstreamServer = https.createServer({ cert: tls.serving.cert, key: tls.serving.key }, (req, res) => {
    const socket = req.socket as typeof req.socket & { served?: number };
    socket.served = (socket.served ?? 0) + 1;
    if (socket.served > 1 && partialReused) {
      partialReused = false;
      served.push(`half-answered ${req.method} ${req.url}`);
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n');
      return;
    }
    if ((socket.served > 1 && dropReused === 'once') || dropReused === 'all') {
      if (dropReused === 'once') dropReused = 'never';
      served.push(req.url === POD ? `dropped ${req.method}` : `dropped ${req.method} ${req.url}`);
      socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => {
      served.push(req.url === POD ? `answered ${req.method}` : `answered ${req.method} ${req.url}`);
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"kind":"Pod"}');
    });
  });
  await new Promise<void>((resolve) => upstreamServer.listen(0, '127.0.0.1', resolve));
  upstream = upstreamFromCredentials(`https://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`, tls.ca.cert, 'token', 'test');
  // The bastion's side, reduced to the proxy: each request goes upstream as it is.
  front = http.createServer((req, res) => void proxyRest(req, res, upstream));
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  frontPort = (front.address() as AddressInfo).port;
});
afterAll(async () => {
  upstreamServer.closeAllConnections();
  front.closeAllConnections();
  await new Promise((resolve) => upstreamServer.close(resolve));
  await new Promise((resolve) => front.close(resolve));
});
beforeEach(() => {
  served.length = 0;
  dropReused = 'never';
  partialReused = false;
});

function call(method: string, body?: string, path = POD): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: frontPort, method, path, agent: false, headers: body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

it('a GET on a kept-alive connection dropped as it is reused is sent once more on a new one and answered', async () => {
  expect(await call('GET')).toEqual({ status: 200, body: '{"kind":"Pod"}' });
  dropReused = 'once';
  expect(await call('GET')).toEqual({ status: 200, body: '{"kind":"Pod"}' });
  expect(served).toEqual(['answered GET', 'dropped GET', 'answered GET']);
});

it('once more only: a server that drops every GET gets two tries, and the client a 502 Status', async () => {
  await call('GET');
  served.length = 0;
  dropReused = 'all';
  const r = await call('GET');
  expect(r.status).toBe(502);
  expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', status: 'Failure', code: 502 });
  expect(served).toEqual(['dropped GET', 'dropped GET']);
});

it('a request with a body (it may have had an effect) is never sent twice', async () => {
  await call('GET');
  served.length = 0;
  dropReused = 'once';
  const r = await call('POST', '{"kind":"ConfigMap"}');
  expect(r.status).toBe(502);
  expect(served).toEqual(['dropped POST']);
});

// A GET through a proxy subresource reaches an application in the cluster (the API server passes it
// on), and nothing says that application's GET has no effect: upstream may have read it and passed
// it on before the connection dropped, so it is never sent twice.
it('a GET through a proxy subresource on a dropped reused connection is not sent twice', async () => {
  await call('GET');
  served.length = 0;
  dropReused = 'once';
  const path = '/api/v1/namespaces/demo/pods/web-0/proxy/jobs/run';
  const r = await call('GET', undefined, path);
  expect(r.status).toBe(502);
  expect(served).toEqual([`dropped GET ${path}`]);
  dropReused = 'once';
  const svc = '/api/v1/namespaces/demo/services/http:web:80/proxy/';
  await call('GET');
  served.length = 0;
  dropReused = 'once';
  expect((await call('GET', undefined, svc)).status).toBe(502);
  expect(served).toEqual([`dropped GET ${svc}`]);
});

// Upstream answered (a status line and headers began to arrive) before the connection closed: it
// read and ran the request, so this is not the idle-connection race, and the GET is not repeated.
it('a GET whose answer had begun to arrive when the connection dropped is not sent twice', async () => {
  await call('GET');
  served.length = 0;
  partialReused = true;
  const watch = `${POD}?watch=true`;
  const r = await call('GET', undefined, watch);
  expect(r.status).toBe(502);
  expect(served).toEqual([`half-answered GET ${watch}`]);
});

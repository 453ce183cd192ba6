// The shared upstream TLS context: one per distinct TLS material, and it verifies exactly as a
// context of the connection's own would (a server the CA did not issue is refused).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createLoopbackServingMaterial, type ServingMaterial } from '../../tls/ca.js';
import { tlsOptions } from './dial.js';
import { sharedSecureContext } from './tls-context.js';

let good: ServingMaterial;
let other: ServingMaterial;
let server: tls.Server;
let port: number;

beforeAll(async () => {
  good = await createLoopbackServingMaterial('tls-context test CA');
  other = await createLoopbackServingMaterial('another CA');
  server = tls.createServer({ cert: good.serving.cert, key: good.serving.key }, (s) => s.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function connect(options: Record<string, unknown>): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ ...options, host: '127.0.0.1', port, servername: 'localhost' } as tls.ConnectionOptions, () => undefined);
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

describe('sharedSecureContext', () => {
  it('gives the same context for the same material, however it is passed, and another for other material', () => {
    const a = sharedSecureContext({ ca: good.ca.cert });
    expect(sharedSecureContext({ ca: Buffer.from(good.ca.cert) })).not.toBe(a); // a Buffer is other input than a string
    expect(sharedSecureContext({ ca: String(good.ca.cert) })).toBe(a);
    expect(sharedSecureContext({ ca: good.ca.cert, servername: 'x', rejectUnauthorized: true })).toBe(a); // per-connection options do not matter
    expect(sharedSecureContext({ ca: other.ca.cert })).not.toBe(a);
  });

  it('tlsOptions carries the shared context, and connections through it verify the server', async () => {
    const opts = tlsOptions({ ca: good.ca.cert, rejectUnauthorized: true });
    expect(opts['secureContext']).toBe(tlsOptions({ ca: good.ca.cert, rejectUnauthorized: true })['secureContext']);
    await expect(connect(opts)).resolves.toBe('hello');
    // Fails closed: a context holding another CA refuses this server.
    await expect(connect(tlsOptions({ ca: other.ca.cert, rejectUnauthorized: true }))).rejects.toThrow(/certificate/);
  });
});

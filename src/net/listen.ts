// Binding servers and naming where they listen.
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { BastionError, ErrorCode } from '../errors/index.js';

/** Listens and resolves once bound; rejects with the bind error (EADDRINUSE names the port). */
export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** `scheme://host:port` of a bound server, with IPv6 hosts in brackets. */
export function boundUrl(server: Server, scheme: 'http' | 'https'): string {
  const a = server.address() as AddressInfo;
  return `${scheme}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}

/** Why a bind fails that the operator fixes by choosing another address, in their words. */
const BIND_FAILURES: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'address not available on this host',
};

/**
 * Binds like {@link listen}, but a bind the operator can fix (in use, not permitted, not a local
 * address) rejects with a USAGE error naming the flag that chose the address:
 * `--listen 127.0.0.1:6443: address already in use (choose another with --listen)`.
 * Other errors pass through unchanged.
 */
export async function listenFor<T>(flag: string, address: { host: string; port: number }, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (err) {
    const why = BIND_FAILURES[(err as NodeJS.ErrnoException).code ?? ''];
    if (why === undefined) throw err;
    const host = address.host.includes(':') ? `[${address.host}]` : address.host;
    throw new BastionError(ErrorCode.USAGE, `${flag} ${host}:${address.port}: ${why} (choose another with ${flag})`, { code: (err as NodeJS.ErrnoException).code }, { cause: err });
  }
}

// Binding servers and naming where they listen.
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';

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

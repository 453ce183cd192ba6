// pods/portforward on the simulated cluster: the transport accepts whichever form the client
// speaks (SPDY/3.1, the WebSocket tunnel, the channel protocol) and each forwarded connection
// becomes a TCP connection to the pod's own port, as the kubelet's runtime makes it.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isBastionError } from '../../errors/index.js';
import { acceptPortForward, type ForwardStream, type PortForwardServer } from '../../transport/portforward/index.js';
import { forwardToPod, type PodTarget } from './target.js';

export type { PodTarget } from './target.js';

/** Serves one port-forward upgrade for `target`; resolves when the session is over. */
export async function servePortForward(req: IncomingMessage, socket: Duplex, head: Buffer, params: URLSearchParams, target: PodTarget): Promise<PortForwardServer | undefined> {
  let server: PortForwardServer;
  try {
    server = await acceptPortForward(req, socket, head, params);
  } catch (err) {
    // Refused: the transport has answered the client.
    if (isBastionError(err)) return undefined;
    throw err;
  }
  const untrack = target.track(() => server.destroy());
  const running = new Set<Promise<void>>();
  server.onConnection((stream) => {
    const job = forward(target, stream);
    running.add(job);
    void job.finally(() => running.delete(job));
  });
  await server.closed;
  untrack();
  await Promise.all(running);
  return server;
}

async function forward(target: PodTarget, stream: ForwardStream): Promise<void> {
  const failure = await forwardToPod(target, stream.port, stream.data);
  // kubectl waits for the error stream's end after each connection; a message there ends its session.
  if (failure !== undefined) stream.fail(failure);
  else stream.done();
}

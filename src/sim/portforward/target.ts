// One forwarded connection to a pod's port, as the kubelet's runtime makes it: a TCP connection to
// the port inside the pod (here: the pod's own loopback address), bytes copied both ways, and the
// runtime's wording when nothing listens there.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** The pod a port-forward reaches. */
export interface PodTarget {
  namespace: string;
  name: string;
  uid: string;
  /** Where the pod's processes listen (podLoopbackAddress). */
  address: string;
  /** Called when the pod goes away: every open connection ends. Returns the unregister function. */
  track(end: () => void): () => void;
}

/** How a forwarded connection ended: undefined, or the text the kubelet writes on the error stream. */
export type ForwardResult = string | undefined;

/**
 * Connects `data` (the client's data stream) to `port` in the pod and copies both ways until both
 * directions have ended. Half-closes are passed on (the client's end becomes a TCP FIN to the pod
 * and the pod's FIN ends the data stream), so a request answered after the client stopped sending
 * still comes back whole.
 */
export function forwardToPod(target: PodTarget, port: number, data: Duplex): Promise<ForwardResult> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host: target.address, port, allowHalfOpen: true });
    let connected = false;
    const untrack = target.track(() => {
      socket.destroy();
      data.destroy();
    });
    socket.once('connect', () => {
      connected = true;
      socket.setNoDelay(true);
      data.pipe(socket);
      socket.pipe(data);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected) {
        untrack();
        data.end();
        resolve(connectFailure(target, port, err));
        return;
      }
      data.destroy();
    });
    socket.once('close', () => {
      untrack();
      if (!connected) return;
      if (!data.writableEnded && !data.destroyed) data.end();
      resolve(undefined);
    });
    // The data stream is gone (reset by the client, or its connection lost) while the pod still
    // sends: nobody can read that any more.
    data.once('close', () => {
      if (!socket.readableEnded) socket.destroy();
    });
    data.on('error', () => socket.destroy());
  });
}

/**
 * containerd's refusal, wrapped by the kubelet's streaming server (error forwarding port ... uid :
 * failed to execute portforward in network namespace ...), which is what kubectl prints.
 */
function connectFailure(target: PodTarget, port: number, err: NodeJS.ErrnoException): string {
  const sandbox = createHash('sha256').update(`sandbox/${target.uid}`).digest('hex');
  const netns = createHash('sha256').update(`netns/${target.uid}`).digest('hex');
  const netnsPath = `/var/run/netns/cni-${netns.slice(0, 8)}-${netns.slice(8, 12)}-${netns.slice(12, 16)}-${netns.slice(16, 20)}-${netns.slice(20, 32)}`;
  const reason = err.code === 'ECONNREFUSED' ? 'connect: connection refused' : `connect: ${err.message}`;
  return (
    `error forwarding port ${port} to pod ${sandbox}, uid : failed to execute portforward in network namespace "${netnsPath}": ` +
    `failed to connect to localhost:${port} inside namespace "${sandbox}", ` +
    `IPv4: dial tcp4 127.0.0.1:${port}: ${reason} IPv6 dial tcp6 [::1]:${port}: ${reason} `
  );
}

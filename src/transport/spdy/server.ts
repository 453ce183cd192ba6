// Server side of a kubectl exec/attach over SPDY/3.1: negotiate, switch protocols, collect the
// session's streams, and hand back the transport-neutral ServerStreams.
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { BastionError, ErrorCode } from '../../errors/index.js';
import type { ServerStreams, StreamOptions } from '../../protocol/streams.js';
import { SpdyConnection } from './connection.js';
import type { SpdyLimits } from './limits.js';
import { SpdyServerStreams } from './server-streams.js';
import { awaitSessionStreams, expectedStreamTypes } from './stream-setup.js';
import { DEFAULT_SPDY_PROTOCOLS, negotiateSpdy, refuseUpgrade, writeSwitchingProtocols } from './upgrade.js';

/** The CRI streaming server's stream-creation timeout, which kubelets use. */
export const DEFAULT_STREAM_SETUP_TIMEOUT_MS = 30_000;

export interface AcceptSpdyOptions {
  /** What the exec/attach query asked for; decides which streams the client will open. */
  options: StreamOptions;
  /** Protocol names the server accepts, most preferred first (default v5 … channel.k8s.io). */
  supported?: readonly string[];
  streamSetupTimeoutMs?: number;
  limits?: Partial<SpdyLimits>;
}

/**
 * Accepts a SPDY/3.1 upgrade for exec/attach on a socket handed over by the HTTP server's
 * 'upgrade' event. A refused upgrade is answered with a metav1.Status (400 without an offer, 403
 * with X-Accepted-Stream-Protocol-Versions when nothing matches) and rejects with its BastionError.
 * After the 101, failures (setup timeout, protocol errors, peer gone) close the connection and
 * reject with the cause.
 */
export async function acceptSpdyRemoteCommand(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  opts: AcceptSpdyOptions,
): Promise<ServerStreams> {
  const supported = opts.supported ?? DEFAULT_SPDY_PROTOCOLS;
  let negotiated;
  try {
    negotiated = negotiateSpdy(req, supported);
  } catch (err) {
    const error = err instanceof BastionError ? err : new BastionError(ErrorCode.INTERNAL, 'SPDY negotiation failed', undefined, { cause: err });
    refuseUpgrade(socket, error, supported);
    throw error;
  }

  writeSwitchingProtocols(socket, negotiated.name);
  // Interactive sessions: keystrokes and echoes must not wait for Nagle.
  (socket as Partial<Socket>).setNoDelay?.(true);

  const conn = new SpdyConnection(socket, { role: 'server', limits: opts.limits, head });
  const expected = expectedStreamTypes(opts.options, negotiated.protocol);
  const streams = await awaitSessionStreams(conn, expected, opts.streamSetupTimeoutMs ?? DEFAULT_STREAM_SETUP_TIMEOUT_MS);
  return new SpdyServerStreams(conn, negotiated.protocol, negotiated.name, opts.options, streams);
}

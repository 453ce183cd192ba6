// Waits for the streams of one remote-command session. kubectl opens them one at a time and
// waits for each SYN_REPLY, so every stream is answered the moment it arrives.
import { BastionError, ErrorCode } from '../../errors/index.js';
import { Header, StreamType, type StreamTypeName } from '../../protocol/constants.js';
import type { StreamOptions } from '../../protocol/streams.js';
import type { ChannelProtocol } from '../../protocol/versions/index.js';
import type { SpdyConnection } from './connection.js';
import type { SpdyStream } from './stream.js';

export type SessionStreamType = Exclude<StreamTypeName, 'data'>;

/**
 * The streams a client opens for these options, as the kubelet counts them: error always; stdin,
 * stdout as asked; stderr only without a TTY (TTY merges it into stdout); resize with a TTY from v3.
 */
export function expectedStreamTypes(options: StreamOptions, protocol: ChannelProtocol): SessionStreamType[] {
  const types: SessionStreamType[] = [StreamType.error];
  if (options.stdin) types.push(StreamType.stdin);
  if (options.stdout) types.push(StreamType.stdout);
  if (options.stderr && !options.tty) types.push(StreamType.stderr);
  if (options.tty && protocol.supportsResize) types.push(StreamType.resize);
  return types;
}

/**
 * Resolves once one stream of each expected type exists. Rejects (having ended the session) on
 * timeout, on a stream that is not expected or is duplicated, or if the connection ends first.
 */
export function awaitSessionStreams(
  conn: SpdyConnection,
  expected: readonly SessionStreamType[],
  timeoutMs: number,
): Promise<Map<SessionStreamType, SpdyStream>> {
  return new Promise((resolve, reject) => {
    const found = new Map<SessionStreamType, SpdyStream>();
    let settled = false;

    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      conn.off('stream', onStream);
      conn.off('close', onClose);
      conn.off('goaway', onGoAway);
      conn.off('error', onError);
    };
    const failSetup = (err: BastionError, end: () => void): void => {
      if (settled) return;
      cleanup();
      end();
      reject(err);
    };

    const onStream = (stream: SpdyStream): void => {
      const values = stream.headers[Header.streamType];
      const type = values?.length === 1 ? (values[0] as SessionStreamType) : undefined;
      if (type === undefined || !expected.includes(type) || found.has(type)) {
        const err = new BastionError(
          ErrorCode.BAD_STREAM_REQUEST,
          type === undefined ? `stream ${stream.id} has no single ${Header.streamType} header` : `unexpected ${type} stream ${stream.id}`,
          { streamId: stream.id, streamType: values ? [...values] : null, expected: [...expected] },
        );
        // A client that opens streams we did not agree on is confused or hostile: end the session.
        failSetup(err, () => conn.abort(err));
        return;
      }
      stream.reply();
      found.set(type, stream);
      if (found.size === expected.length) {
        cleanup();
        resolve(found);
      }
    };
    const onClose = (): void =>
      failSetup(conn.error ?? new BastionError(ErrorCode.CONNECTION_CLOSED, 'connection closed before the streams were set up'), () => undefined);
    const onError = (err: BastionError): void => failSetup(err, () => undefined);
    const onGoAway = (): void =>
      failSetup(new BastionError(ErrorCode.SPDY_GOAWAY, 'client sent GOAWAY before the streams were set up'), () => void conn.close());

    const timer = setTimeout(
      () =>
        failSetup(
          new BastionError(ErrorCode.STREAM_SETUP_TIMEOUT, `timed out after ${timeoutMs} ms waiting for streams`, {
            expected: [...expected],
            found: [...found.keys()],
          }),
          () => void conn.close(),
        ),
      timeoutMs,
    );
    conn.on('stream', onStream);
    conn.on('close', onClose);
    conn.on('goaway', onGoAway);
    conn.on('error', onError);
  });
}

// The public shape of the upstream exec/attach client (see ../executor.ts for the overview).
import type { Readable, Writable } from 'node:stream';
import { ProtocolName } from '../../protocol/constants.js';
import type { TerminalSize } from '../../protocol/resize.js';
import type { Status } from '../../protocol/status.js';

/**
 * What the bastion offers upstream over WebSocket by default: v5 only (kube-apiserver ≥1.30
 * translates it and gives us the CLOSE signal). A server that refuses it (a kubelet reached through
 * an older API server) is dialed over SPDY/3.1 instead, never WebSocket v4, which cannot half-close
 * stdin (see dial.ts).
 */
export const DEFAULT_UPSTREAM_PROTOCOLS: readonly string[] = [ProtocolName.v5];

/** ws's handshake timeout (TCP + TLS + HTTP upgrade answer). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 30_000;
/** Interval of our own keep-alive pings; see UpstreamExecRequest.keepAliveMs. */
export const DEFAULT_KEEPALIVE_MS = 30_000;
/** How long we wait for upstream's close after its Status (or after our own close) before cutting the socket. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
/** Largest single message accepted from upstream (API server and kubelet send ≤32 KiB). */
export const UPSTREAM_MAX_PAYLOAD = 4 * 1024 * 1024;
/** Largest body of a refused upgrade that we read (a metav1.Status is a few hundred bytes). */
export const MAX_REFUSAL_BODY_BYTES = 64 * 1024;
/** Largest error-channel content kept (the Status JSON). */
export const MAX_ERROR_CHANNEL_BYTES = 64 * 1024;
/** Readable buffer of stdout/stderr before the WebSocket is paused. */
export const OUTPUT_HIGH_WATER_MARK = 64 * 1024;

export interface UpstreamExecRequest {
  /**
   * request-target to use upstream, e.g.
   * /api/v1/namespaces/demo/pods/web-0/exec?command=cat&container=app&stdin=true&stdout=true&stderr=true
   * The upstream server URL's own path prefix (if any) is put in front of it.
   */
  path: string;
  /**
   * Subprotocols to offer, most preferred first; default ['v5.channel.k8s.io'], with the SPDY/3.1
   * fallback when upstream refuses an offer containing v5.
   * Any WebSocket remote-command subprotocol the transport knows may be named (v5, v4,
   * v4.base64, channel.k8s.io, base64.channel.k8s.io); anything else is refused (CONFIG_INVALID).
   */
  protocols?: string[];
  /**
   * Extra request headers (e.g. impersonation headers set by the bastion). They are added after
   * the upstream credentials, so they may override them; WebSocket handshake headers are ignored.
   */
  headers?: Record<string, string | string[]>;
  /**
   * Aborting before the session is open rejects the dial (CONNECTION_CLOSED, details.aborted);
   * aborting later is the same as `session.destroy()`.
   */
  signal?: AbortSignal;
  /** Opening-handshake timeout; default 30 s. Expiry rejects with UPSTREAM_UNAVAILABLE. */
  handshakeTimeoutMs?: number;
  /**
   * Keep-alive ping interval; default 30 s; 0 disables. The API server and kubelets do not need
   * client pings (they answer them, as every Go WebSocket server does), so this is not for them:
   * it detects a dead upstream (host gone, half-open TCP) so the session ends with a Failure
   * Status instead of hanging. The session is declared dead when nothing at all (pong, message,
   * ping) arrived for two intervals while we were reading; time spent paused for backpressure
   * does not count.
   */
  keepAliveMs?: number;
}

export interface UpstreamSession {
  /** The negotiated subprotocol, e.g. 'v5.channel.k8s.io', or 'v4.channel.k8s.io over SPDY/3.1'. */
  readonly protocol: string;
  /** True if stdin can be half-closed on its own (v5 CLOSE, SPDY FIN); false for WebSocket v4 and older. */
  readonly canHalfCloseStdin: boolean;
  /**
   * Once `status` resolved: true when upstream itself said how the session ended (a Status on the
   * error channel, or a v1-v3 clean close); false when the bastion synthesised it (connection lost,
   * closed without a Status, destroyed by us).
   */
  readonly statusFromUpstream: boolean;
  /**
   * When (Date.now()) upstream's first Status bytes arrived on the error channel; undefined until
   * then. The moment a client learns how the session ended, ahead of the close that resolves `status`.
   */
  readonly statusArrivedAt: number | undefined;
  /**
   * Writes channel 0; null unless the request's query has stdin=true. Each write's callback fires
   * once its bytes are handed to the socket while it holds less than 256 KiB unsent, else once they
   * reached it (bounded: about 32 KiB buffered plus 256 KiB in the socket).
   * end(): v5 sends CLOSE `[255, 0]` (SPDY: a FIN on the stdin stream), so upstream stdin sees EOF
   * while output keeps flowing. Under WebSocket v4 and older nothing can be half-closed: end() finishes the Writable locally and sends
   * nothing; upstream stdin stays open until the session closes (the process exits, or destroy()).
   * Destroyed (without an error) when the session closes.
   */
  readonly stdin: Writable | null;
  /**
   * Channel 1 payloads. Ends (EOF) when upstream closes, whatever the reason (the reason is in
   * `status`); never emits 'error'. A full buffer pauses the WebSocket (backpressure), so a
   * consumer must read stdout and stderr both, or destroy the one it does not want.
   */
  readonly stdout: Readable;
  /** Channel 2 payloads (empty with a TTY, where stderr is merged into stdout). Same rules as stdout. */
  readonly stderr: Readable;
  /** Sends channel 4 JSON `{"Width":W,"Height":H}\n`. A no-op once closed, or for sizes outside 0..65535. */
  resize(size: TerminalSize): void;
  /**
   * Resolves with the Status from channel 3 (decoded per protocol version) once upstream closes.
   * A Status that arrived in full wins over whatever happened afterwards. A close without a
   * Status (v4/v5), a protocol violation, a dead connection or destroy() yields a Failure Status
   * describing it. Never rejects.
   */
  readonly status: Promise<Status>;
  /**
   * Hard stop now: no more bytes either way. The socket is cut (no close handshake), stdout and
   * stderr are destroyed and emit no further 'data' (even for chunks already buffered), stdin is
   * destroyed. Upstream notices the disconnect (the API server then ends the exec).
   */
  destroy(): void;
  /** Resolves once the WebSocket is gone. Never rejects. */
  readonly closed: Promise<void>;
}

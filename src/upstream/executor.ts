// The client side of an exec/attach session with the real API server: the relay dials upstream
// over WebSocket (v5.channel.k8s.io, falling back to SPDY/3.1 v4 when upstream refuses v5) with the
// bastion's own credentials and gets byte streams, resize, and the session's Status as data.
//
// Module layout:
//   executor/types.ts    UpstreamExecRequest, UpstreamSession, defaults and limits
//   executor/dial.ts          ws client options, the opening handshake, refusals, the SPDY fallback
//   executor/refusal.ts       non-101 answers: bounded body, upstream Status kept as data
//   executor/session.ts       the open WebSocket session: demultiplexing, backpressure, CLOSE, end-of-session Status
//   executor/spdy-dial.ts     the SPDY/3.1 upgrade and the streams opened as kubectl opens them
//   executor/spdy-session.ts  the open SPDY session: stdin FIN as the half-close, resize, the error stream's Status
export { dialUpstreamExec, clientOptions, upstreamUrl } from './executor/dial.js';
export { classifyRefusal } from './executor/refusal.js';
export { failureStatus } from './executor/session.js';
export { SPDY_UPSTREAM_PROTOCOLS, dialUpstreamSpdyExec } from './executor/spdy-dial.js';
export { spdyProtocolLabel } from './executor/spdy-session.js';
export {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_KEEPALIVE_MS,
  DEFAULT_UPSTREAM_PROTOCOLS,
  MAX_ERROR_CHANNEL_BYTES,
  MAX_REFUSAL_BODY_BYTES,
  OUTPUT_HIGH_WATER_MARK,
  UPSTREAM_MAX_PAYLOAD,
  type UpstreamExecRequest,
  type UpstreamSession,
} from './executor/types.js';

// WebSocket transport for remote-command (exec/attach), server role.
export { acceptWebSocketRemoteCommand, DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_MAX_PAYLOAD, type AcceptWebSocketOptions } from './server.js';
export type { WebSocketServerStreams } from './session.js';
export { CloseCode } from './receiver.js';
export { DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_BYTES, type SenderLimits } from './sender.js';
export { DEFAULT_SUPPORTED, SUBPROTOCOLS, negotiateSubprotocol, type WebSocketSubprotocol } from './subprotocols.js';

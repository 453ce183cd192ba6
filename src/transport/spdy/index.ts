// Public surface of the SPDY/3.1 transport.
export { acceptSpdyRemoteCommand, DEFAULT_STREAM_SETUP_TIMEOUT_MS, type AcceptSpdyOptions } from './server.js';
export { SpdyConnection, type SpdyConnectionOptions, type SpdyRole, type GoAwayInfo } from './connection.js';
export { SpdyStream } from './stream.js';
export { DEFAULT_LIMITS, resolveLimits, type SpdyLimits } from './limits.js';
export { DEFAULT_SPDY_PROTOCOLS, negotiateSpdy, refuseUpgrade, writeSwitchingProtocols, type Negotiated } from './upgrade.js';
export { expectedStreamTypes, awaitSessionStreams, type SessionStreamType } from './stream-setup.js';
export type { HeaderInput, HeaderMap } from './header-block.js';
export { SpdyServerStreams } from './server-streams.js';

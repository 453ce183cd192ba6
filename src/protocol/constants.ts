// Wire constants of the Kubernetes remote-command protocols (exec, attach).
// Values come from k8s.io/apimachinery pkg/util/remotecommand and k8s.io/api core/v1.

/** WebSocket channel numbers (first byte of each binary message). */
export const Channel = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  error: 3,
  resize: 4,
  /** v5 only: `[255, ch]` half-closes channel `ch`. */
  close: 255,
} as const;
export type ChannelName = Exclude<keyof typeof Channel, 'close'>;

/** SPDY `streamtype` header values (the header name is lower-cased on the wire). */
export const StreamType = {
  error: 'error',
  stdin: 'stdin',
  stdout: 'stdout',
  stderr: 'stderr',
  resize: 'resize',
  /** port-forward only */
  data: 'data',
} as const;
export type StreamTypeName = (typeof StreamType)[keyof typeof StreamType];

export const Header = {
  streamType: 'streamtype',
  streamProtocolVersion: 'X-Stream-Protocol-Version',
  acceptedStreamProtocolVersions: 'X-Accepted-Stream-Protocol-Versions',
  webSocketProtocol: 'Sec-WebSocket-Protocol',
  portForwardPort: 'port',
  portForwardRequestId: 'requestid',
} as const;

/** Channel protocol names, as negotiated in X-Stream-Protocol-Version / Sec-WebSocket-Protocol. */
export const ProtocolName = {
  v1: 'channel.k8s.io',
  v2: 'v2.channel.k8s.io',
  v3: 'v3.channel.k8s.io',
  v4: 'v4.channel.k8s.io',
  v5: 'v5.channel.k8s.io',
  base64v1: 'base64.channel.k8s.io',
  base64v4: 'v4.base64.channel.k8s.io',
  portForward: 'portforward.k8s.io',
} as const;

export const SPDY_UPGRADE = 'SPDY/3.1';

/** The default terminal size used for recordings of sessions that never sent a resize. */
export const DEFAULT_TERMINAL = { width: 80, height: 24 } as const;

// Public surface of port-forward on the client-facing side: the three forms behind one interface.
export { acceptPortForward, type AcceptPortForwardOptions } from './accept.js';
export { MAX_FORWARDED_CONNECTIONS, PORT_FORWARD_FORMS, PORT_FORWARD_SPDY_LIMITS, portProblem, type ForwardStream, type PortForwardForm, type PortForwardServer } from './types.js';
export { PORT_FORWARD_TUNNEL_PROTOCOL, TunnelStream } from './tunnel.js';
export { STREAM_CREATION_TIMEOUT_MS } from './spdy-pairs.js';
export { parsePorts } from './channels.js';

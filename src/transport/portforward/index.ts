// Public surface of port-forward on the client-facing side: the three forms behind one interface.
export { acceptPortForward, type AcceptPortForwardOptions } from './accept.js';
export { PORT_FORWARD_FORMS, portProblem, type ForwardStream, type PortForwardForm, type PortForwardServer } from './types.js';
export { PORT_FORWARD_TUNNEL_PROTOCOL, TunnelStream } from './tunnel.js';
export { STREAM_CREATION_TIMEOUT_MS } from './spdy-pairs.js';
export { parsePorts } from './channels.js';

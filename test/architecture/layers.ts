// The allowed dependency arrows between the folders of src/, the one table that
// docs/architecture.md explains and test/architecture/imports.test.ts enforces. A folder may
// import only the folders listed for it; anything else (a new arrow, or a cycle) fails the suite.

export const LAYERS = {
  // Wire vocabulary: metav1.Status, channel protocol versions, stream options. Knows nothing else.
  protocol: [],
  // One error type and the code table.
  errors: ['protocol'],
  // Pure vocabulary: requests, approvals, scopes, the session-sink contract.
  model: ['protocol', 'errors'],
  // Small leaf helpers with no domain knowledge.
  tar: ['errors'],
  net: ['errors'],
  observability: [],
  tls: ['errors'],
  // Framing: SPDY/3.1 and WebSocket. No policy, store or session.
  transport: ['protocol', 'errors'],
  // Storage knows the model, never policy, approvals logic or endpoints.
  store: ['model', 'errors', 'protocol'],
  policy: ['model', 'errors', 'observability'],
  // The upstream API server as a client: REST forwarding, pod lookup, exec dialing.
  upstream: ['protocol', 'errors', 'transport'],
  // The recorder sees neutral session events (model) and writes files; it knows no transport.
  recording: ['model', 'protocol', 'errors', 'tar', 'store', 'observability'],
  approvals: ['model', 'errors', 'policy', 'store', 'observability'],
  session: ['model', 'protocol', 'errors', 'transport', 'upstream', 'recording', 'store', 'approvals', 'observability'],
  evidence: ['model', 'errors', 'recording', 'store', 'approvals', 'policy', 'tar'],
  endpoint: ['model', 'protocol', 'errors', 'net', 'transport', 'upstream', 'session', 'approvals', 'store', 'observability'],
  api: ['model', 'protocol', 'errors', 'net', 'store', 'recording', 'evidence', 'approvals', 'observability'],
  // The composition root: wiring only. It never knows the simulator.
  app: ['model', 'errors', 'net', 'tls', 'observability', 'store', 'policy', 'upstream', 'recording', 'approvals', 'session', 'evidence', 'endpoint', 'api'],
  // The simulated cluster: a test double and demo, speaking the wire protocols.
  sim: ['protocol', 'errors', 'net', 'tls', 'transport'],
  // Only the CLI chooses between a real upstream and the simulator. It speaks the control API
  // with the types of its contract (api/contract.ts).
  cli: ['model', 'errors', 'net', 'observability', 'store', 'policy', 'upstream', 'recording', 'approvals', 'evidence', 'api', 'app', 'sim', 'tls'],
} as const satisfies Record<string, readonly string[]>;

export type Layer = keyof typeof LAYERS;

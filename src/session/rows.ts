// Session rows with their audit events: every session start and end is a row in the sessions
// table and an event in the hash-chained audit log, in one transaction each.
//
// Durability (docs/storage.md, "Durability of session rows"): a start (the row, where its
// recording will be, its `session.start` row) is one transaction committed before upstream is
// dialed. What comes after the dial (the upstream protocol) and at the end (the end row with its
// `session.end` row, the recording's hashes) joins the store's group commit: many sessions ending
// at once share a few fsyncs instead of three each, and a crash inside the window leaves the
// session open, which crash recovery ends as interrupted with the hashes of its files.
import type { AuditEventInput, AuditLog, Session, SessionStore } from '../store/types.js';
import { newSessionId } from '../store/sessions.js';
import { recordingPaths } from '../recording/recorder.js';
import type { SessionRowPort } from './stream-session.js';
import type { ForwardedConnectionAbout, ForwardRowPort } from './portforward-session.js';
import type { ForwardedConnectionEnd } from '../model/forward.js';

export interface SessionRowOptions {
  /** Where recordings go: the start's transaction records each session's file paths. */
  recordingsDir?: string;
  /** Told after each session's end rows are committed (the bastion signs a checkpoint). */
  ended?(session: Session): void;
}

export function sessionRows(store: { sessions: SessionStore; audit: AuditLog }, opts: SessionRowOptions = {}): SessionRowPort & ForwardRowPort {
  return {
    start: async (input) => {
      const id = newSessionId();
      const paths = opts.recordingsDir === undefined ? undefined : recordingPaths(opts.recordingsDir, input.approvalId, id);
      return store.sessions.start({ ...input, id, ...(paths ? { castPath: paths.castPath, rawPath: paths.rawPath } : {}) }, (session) => ({
        event: 'session.start',
        actor: `agent:${input.agent.name}`,
        agent: input.agent,
        source: input.client,
        sessionId: session.id,
        approvalId: input.approvalId,
        namespace: input.namespace,
        name: input.pod,
        stream: input.operation,
        details: { container: input.container, command: input.command, tty: input.tty, transport: input.transport, protocol: input.protocol },
      }));
    },
    upstreamChosen: (id, protocol) => store.sessions.setUpstreamProtocol(id, protocol, { grouped: true }),
    end: async (id, end) => {
      const session = await store.sessions.end(
        id,
        { reason: end.reason, exitCode: end.exitCode, status: end.status, bytesIn: end.bytesIn, bytesOut: end.bytesOut },
        { grouped: true, audit: (row) => sessionEndEvent(row, { endReason: end.reason, exitCode: end.exitCode, bytesIn: end.bytesIn, bytesOut: end.bytesOut }) },
      );
      opts.ended?.(session);
      return session;
    },
    connectionStarted: (start) => store.sessions.connectionStarted(start),
    connectionEnded: (sessionId, seq, end, about) => store.sessions.connectionEnded(sessionId, seq, end, connectionEndEvent(sessionId, seq, end, about)),
  };
}


/** A forwarded connection's end in the audit chain: its port, outcome and hashes cannot be quietly changed. */
export function connectionEndEvent(sessionId: string, seq: number, end: ForwardedConnectionEnd, about: ForwardedConnectionAbout): AuditEventInput {
  return { event: 'session.connection', actor: 'system', sessionId, approvalId: about.approvalId, agent: about.agent, details: { seq, port: about.port, ...end } };
}

/** A session's end in the audit chain (verify compares it with the row's end); also crash recovery's. */
export function sessionEndEvent(session: Session, details: Record<string, unknown>): AuditEventInput {
  return {
    event: 'session.end',
    actor: 'system',
    source: session.client,
    sessionId: session.id,
    approvalId: session.approvalId,
    agent: { id: session.agentId, name: session.agent },
    details,
  };
}

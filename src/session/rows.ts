// Session rows with their audit events: every session start and end is a row in the sessions
// table and an event in the hash-chained audit log, written before the relay goes on.
import type { AuditEventInput, AuditLog, SessionStore } from '../store/types.js';
import type { SessionRowPort } from './stream-session.js';
import type { ForwardedConnectionAbout, ForwardRowPort } from './portforward-session.js';
import type { ForwardedConnectionEnd } from '../model/forward.js';

export function sessionRows(store: { sessions: SessionStore; audit: AuditLog }): SessionRowPort & ForwardRowPort {
  return {
    start: async (input) => {
      const session = await store.sessions.start(input);
      await store.audit.append({
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
      });
      return session;
    },
    upstreamChosen: (id, protocol) => store.sessions.setUpstreamProtocol(id, protocol),
    end: async (id, end) => {
      const session = await store.sessions.end(id, { reason: end.reason, exitCode: end.exitCode, status: end.status, bytesIn: end.bytesIn, bytesOut: end.bytesOut });
      await store.audit.append({
        event: 'session.end',
        actor: 'system',
        source: session.client,
        sessionId: id,
        approvalId: session.approvalId,
        agent: { id: session.agentId, name: session.agent },
        details: { endReason: end.reason, exitCode: end.exitCode, bytesIn: end.bytesIn, bytesOut: end.bytesOut },
      });
      return session;
    },
    connectionStarted: (start) => store.sessions.connectionStarted(start),
    connectionEnded: async (sessionId, seq, end, about) => {
      await store.sessions.connectionEnded(sessionId, seq, end);
      await store.audit.append(connectionEndEvent(sessionId, seq, end, about));
    },
  };
}


/** A forwarded connection's end in the audit chain: its port, outcome and hashes cannot be quietly changed. */
export function connectionEndEvent(sessionId: string, seq: number, end: ForwardedConnectionEnd, about: ForwardedConnectionAbout): AuditEventInput {
  return { event: 'session.connection', actor: 'system', sessionId, approvalId: about.approvalId, agent: about.agent, details: { seq, port: about.port, ...end } };
}

// Crash recovery at startup: sessions a previous run left open are closed as `interrupted` before
// anything new starts, and their recordings made whole (partial tails cut, an interrupted marker
// added) and hashed, so the record says exactly how far each one got.
import type { Logger } from '../observability/log.js';
import { recoverRecording } from '../recording/recover.js';
import { join } from 'node:path';
import type { AuditLog, Session, SessionStore } from '../store/types.js';
import { connectionEndEvent, sessionEndEvent } from './rows.js';
import { recoverForwardRecording, type ForwardRecordingResult } from '../recording/forward-recorder.js';

export async function closeInterruptedSessions(store: { sessions: SessionStore; audit: AuditLog }, log: Logger, recordingsDir?: string): Promise<number> {
  // Oldest first. Each session's end and its session.end row are one transaction (interrupt): a
  // recovery cut short leaves the rest open for the next start, never ended without their row.
  const open = (await store.sessions.list({ state: 'open' })).reverse();
  for (const session of open) {
    if (session.operation === 'portforward' && recordingsDir !== undefined) await endOpenConnections(store, session, recordingsDir, log);
    let recovered: Record<string, unknown> = {};
    if (session.castPath && session.rawPath) {
      try {
        const r = recoverRecording({ castPath: session.castPath, rawPath: session.rawPath });
        await store.sessions.setRecording(session.id, { castSha256: r.castSha256, rawSha256: r.rawSha256, channelSha256: r.channelSha256 });
        recovered = { castSha256: r.castSha256, rawSha256: r.rawSha256 };
      } catch (err) {
        log.error({ err, sessionId: session.id }, 'could not recover the recording of an interrupted session');
      }
    }
    await store.sessions.interrupt(session.id, (row) => sessionEndEvent(row, { endReason: 'interrupted', ...recovered }));
    log.warn({ sessionId: session.id }, 'session left open by a previous run marked interrupted');
  }
  return open.length;
}

/** The text an interrupted connection's row ends with. */
export const INTERRUPTED_CONNECTION = 'interrupted: the bastion stopped while the connection was open';

/** A port-forward's connections left open end as cut, with what their sidecars hold (made whole). */
async function endOpenConnections(store: { sessions: SessionStore; audit: AuditLog }, session: Session, recordingsDir: string, log: Logger): Promise<void> {
  for (const c of await store.sessions.listConnections(session.id)) {
    if (c.endedAt !== null) continue;
    let held: Omit<ForwardRecordingResult, 'protocol'> | undefined;
    if (c.rawPath !== null) {
      try {
        held = recoverForwardRecording(join(recordingsDir, c.rawPath));
      } catch (err) {
        log.error({ err, sessionId: session.id, seq: c.seq }, 'could not recover the recording of an interrupted connection');
      }
    }
    const end = {
      endedAt: new Date().toISOString(),
      outcome: 'cut' as const,
      detail: INTERRUPTED_CONNECTION,
      bytesIn: held?.bytesIn ?? 0,
      bytesOut: held?.bytesOut ?? 0,
      sha256In: held?.sha256In ?? null,
      sha256Out: held?.sha256Out ?? null,
      rawSha256: held?.rawSha256 ?? null,
      protocol: null,
    };
    await store.sessions.connectionEnded(session.id, c.seq, end, connectionEndEvent(session.id, c.seq, end, { port: c.port, approvalId: session.approvalId, agent: { id: session.agentId, name: session.agent } }));
  }
}

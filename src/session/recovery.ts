// Crash recovery at startup: sessions a previous run left open are closed as `interrupted` before
// anything new starts, and their recordings made whole (partial tails cut, an interrupted marker
// added) and hashed, so the record says exactly how far each one got.
import type { Logger } from '../observability/log.js';
import { recoverRecording } from '../recording/recover.js';
import type { AuditLog, SessionStore } from '../store/types.js';

export async function closeInterruptedSessions(store: { sessions: SessionStore; audit: AuditLog }, log: Logger): Promise<number> {
  const open = await store.sessions.markOpenAsInterrupted();
  for (const session of open) {
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
    await store.audit.append({
      event: 'session.end',
      actor: 'system',
      source: session.client,
      sessionId: session.id,
      approvalId: session.approvalId,
      agent: { id: session.agentId, name: session.agent },
      details: { endReason: 'interrupted', ...recovered },
    });
    log.warn({ sessionId: session.id }, 'session left open by a previous run marked interrupted');
  }
  return open.length;
}

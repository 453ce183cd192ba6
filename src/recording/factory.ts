// Builds the recorder for each session the relay starts: files under
// `<dir>/<approval-id>/<session-id>.{cast,raw}` (recordingPaths) in the format the policy asks for.
// The session row names those paths from its start's own transaction (session/rows.ts), so a crash
// leaves them findable; here it is given their hashes and kubectl-cp file list at the end, with the
// session's end rows in the store's group commit.
import type { Logger } from '../observability/log.js';
import type { SessionInfo, SessionSink } from '../model/session.js';
import type { CastFormat } from './events.js';
import type { SessionRecordingInput } from '../store/types.js';
import { sharedCastWorker } from './cast-derivation.js';
import { createRecorder, toSessionRecording, type RecordingResult } from './recorder.js';

export interface RecorderFactoryOptions {
  dir: string;
  /** Read per session, so a policy reload applies to the next session. */
  settings(): { format: CastFormat; stdin: boolean };
  sessions: { setRecording(id: string, input: SessionRecordingInput, opts?: { grouped?: boolean }): Promise<unknown> };
  log: Logger;
}

export function recorderFactory(opts: RecorderFactoryOptions): (session: SessionInfo) => SessionSink {
  const { log } = opts;
  // Started with the bastion: a thread's start can take longer than a short session (and its end
  // waits at most endTimeoutMs for a batch in flight).
  sharedCastWorker().start();
  return (session) => {
    const settings = opts.settings();
    const saved = (result: RecordingResult): void => {
      if (result.error) log.error({ sessionId: session.id, error: result.error }, 'recording failed; the session was cut');
      const files = result.files?.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256 }));
      opts.sessions
        .setRecording(session.id, { ...toSessionRecording(result), ...(files ? { files } : {}) }, { grouped: true })
        .catch((err: unknown) => log.error({ err, sessionId: session.id }, 'storing the recording hashes failed'));
    };
    // Throws when the files cannot be created: the session is then cut before a byte flows.
    const recorder = createRecorder({
      dir: opts.dir,
      approvalId: session.approvalId,
      sessionId: session.id,
      format: settings.format,
      recordStdin: settings.stdin,
      header: {
        agent: session.agent.name,
        namespace: session.namespace,
        pod: session.pod,
        container: session.container,
        command: session.command,
        tty: session.tty,
        transport: session.transport,
        protocol: session.protocol,
        // Known only once upstream is dialed, after the recorder exists: then it is a marker.
        ...(session.upstreamProtocol ? { upstreamProtocol: session.upstreamProtocol } : {}),
        ...(session.operation === 'exec' || session.operation === 'attach' ? { operation: session.operation } : {}),
      },
      onFinished: saved,
    });
    return recorder;
  };
}

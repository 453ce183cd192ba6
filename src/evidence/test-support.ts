// A store with an approval, its sessions and their recording files, for the evidence, API and CLI
// tests: rows created directly, recordings written as the recorder lays them out.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { SqliteApprovalService } from '../approvals/service.js';
import type { Approval } from '../model/approval.js';
import { recordingPaths } from '../recording/recorder.js';
import { openStore, type Session, type SqliteStore } from '../store/index.js';

export const sha = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

export interface Fixture {
  dir: string;
  dataDir: string;
  recordingsDir: string;
  store: SqliteStore;
  approvals: SqliteApprovalService;
  agent: { id: string; name: string };
  /** The approval under review: two ended sessions (a v2 and a v3 cast), a refused attempt. */
  approval: Approval;
  sessions: Session[];
  /** Another approval with one session: never part of the first approval's evidence. */
  other: Approval;
  otherSession: Session;
  close(): Promise<void>;
}

export function castV2(lines: Array<[number, string, string]>): string {
  const header = { version: 2, width: 80, height: 24, timestamp: 1748855643, env: { TERM: 'xterm' } };
  return [JSON.stringify(header), ...lines.map((l) => JSON.stringify(l))].join('\n') + '\n';
}

export function castV3(lines: Array<[number, string, string]>): string {
  const header = { version: 3, term: { cols: 100, rows: 30, type: 'xterm' }, timestamp: 1748855643 };
  return [JSON.stringify(header), ...lines.map((l) => JSON.stringify(l))].join('\n') + '\n';
}

/** A recorded, ended session under `approval` with the given cast and raw bytes. */
export async function recordedSession(
  f: Pick<Fixture, 'store' | 'recordingsDir' | 'agent'>,
  approval: Approval | null,
  cast: string,
  raw: Buffer,
  opts: { relativePaths?: boolean; command?: string[]; open?: boolean } = {},
): Promise<Session> {
  const s = await f.store.sessions.start({
    approvalId: approval?.id ?? null,
    agent: f.agent,
    operation: 'exec',
    transport: 'websocket',
    protocol: 'v5.channel.k8s.io',
    namespace: 'demo',
    pod: 'web-0',
    container: 'app',
    command: opts.command ?? ['ls', '-l'],
    tty: false,
  });
  await f.store.audit.append({ event: 'session.start', agent: f.agent, approvalId: approval?.id ?? null, sessionId: s.id, stream: 'exec' });
  const { dir: folder, castPath, rawPath } = recordingPaths(f.recordingsDir, approval?.id ?? null, s.id);
  mkdirSync(folder, { recursive: true });
  writeFileSync(castPath, cast);
  writeFileSync(rawPath, raw);
  if (opts.open) {
    await f.store.sessions.setRecording(s.id, {
      castPath: opts.relativePaths ? relative(f.recordingsDir, castPath) : castPath,
      rawPath: opts.relativePaths ? relative(f.recordingsDir, rawPath) : rawPath,
    });
    return (await f.store.sessions.get(s.id))!;
  }
  await f.store.sessions.end(s.id, { endReason: 'completed', exitCode: 3, status: null, bytesIn: 10, bytesOut: raw.length });
  await f.store.audit.append({ event: 'session.end', agent: f.agent, approvalId: approval?.id ?? null, sessionId: s.id, details: { exitCode: 3 } });
  return f.store.sessions.setRecording(s.id, {
    castPath: opts.relativePaths ? relative(f.recordingsDir, castPath) : castPath,
    castSha256: sha(cast),
    rawPath: opts.relativePaths ? relative(f.recordingsDir, rawPath) : rawPath,
    rawSha256: sha(raw),
    channelSha256: { stdin: sha('in'), stdout: sha('out'), stderr: sha('err') },
  });
}

/** One forwarded connection of forwardedSession: its port and, unless refused, the bytes each way. */
export interface TestConnection {
  port: number;
  refused?: string;
  in?: string;
  out?: string;
}

/**
 * An ended port-forward session under `approval` with its forwarded connections, rows made
 * directly and each let-through connection's raw sidecar written under the recordings directory
 * (a stand-in: the agent's bytes then the pod's; the bundle only hashes and carries it).
 */
export async function forwardedSession(f: Pick<Fixture, 'store' | 'recordingsDir' | 'agent'>, approval: Approval, connections: TestConnection[]): Promise<Session> {
  const s = await f.store.sessions.start({
    approvalId: approval.id,
    agent: f.agent,
    operation: 'portforward',
    transport: 'spdy',
    protocol: 'portforward.k8s.io',
    namespace: 'demo',
    pod: 'web-0',
    container: '',
    command: [],
    tty: false,
  });
  await f.store.audit.append({ event: 'session.start', agent: f.agent, approvalId: approval.id, sessionId: s.id, stream: 'portforward' });
  const now = new Date().toISOString();
  let bytesIn = 0;
  let bytesOut = 0;
  for (const [i, c] of connections.entries()) {
    const seq = i + 1;
    const rawPath = c.refused === undefined ? join(approval.id, `${s.id}.${seq}.raw`) : null;
    await f.store.sessions.connectionStarted({ sessionId: s.id, seq, port: c.port, startedAt: now, rawPath });
    const sent = c.in ?? '';
    const got = c.out ?? '';
    if (rawPath !== null) {
      mkdirSync(join(f.recordingsDir, approval.id), { recursive: true });
      writeFileSync(join(f.recordingsDir, rawPath), sent + got);
    }
    bytesIn += sent.length;
    bytesOut += got.length;
    await f.store.sessions.connectionEnded(s.id, seq, {
      endedAt: now,
      outcome: c.refused === undefined ? 'closed' : 'refused',
      detail: c.refused ?? null,
      bytesIn: sent.length,
      bytesOut: got.length,
      sha256In: c.refused === undefined ? sha(sent) : null,
      sha256Out: c.refused === undefined ? sha(got) : null,
      rawSha256: rawPath === null ? null : sha(sent + got),
      protocol: c.refused === undefined ? 'unrecognised' : null,
    });
  }
  return f.store.sessions.end(s.id, { endReason: 'client-closed', exitCode: null, status: null, bytesIn, bytesOut });
}

export async function fixture(prefix = 'kb-evidence-'): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(dir, 'data');
  const recordingsDir = join(dir, 'recordings');
  mkdirSync(recordingsDir, { recursive: true });
  const store = openStore(dataDir);
  const approvals = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  const created = await store.agents.createAgent('claude');
  const agent = { id: created.agent.id, name: created.agent.name };
  const alice = { kind: 'user', name: 'alice', role: 'approver' } as const;
  const approval = await approvals.grant(
    { agent: 'claude', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls', '-l']] }, ttlSeconds: 600, reason: 'INC-1' },
    alice,
  );
  // A refused attempt under the approval (a command outside its allow-list).
  await store.audit.append({
    event: 'request',
    agent,
    method: 'POST',
    path: '/api/v1/namespaces/demo/pods/web-0/exec?command=rm&command=-rf',
    verb: 'create',
    resource: 'pods',
    subresource: 'exec',
    namespace: 'demo',
    name: 'web-0',
    stream: 'exec',
    decision: 'deny',
    approvalId: approval.id,
    statusCode: 403,
    details: { reason: 'command ["rm","-rf"] is not in approval ' + approval.id },
  });
  const f = { store, recordingsDir, agent };
  const raw1 = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x80, 0xc3]);
  const s1 = await recordedSession(f, approval, castV2([[0.1, 'o', 'total 0\r\n'], [0.2, 'm', 'exit status 3']]), raw1);
  const s2 = await recordedSession(f, approval, castV3([[0.1, 'o', 'hello\r\n'], [0.1, 'x', '0']]), Buffer.from('hello\n'), { relativePaths: true });
  const other = await approvals.grant(
    { agent: 'claude', scope: { kind: 'stream', namespace: 'demo', pod: 'db-0', container: 'db', verbs: ['exec'] }, ttlSeconds: 600, reason: 'other' },
    alice,
  );
  const otherSession = await recordedSession(f, other, castV2([[0.1, 'o', 'other\r\n']]), Buffer.from('other'));
  return {
    dir,
    dataDir,
    recordingsDir,
    store,
    approvals,
    agent,
    approval: (await approvals.get(approval.id))!,
    sessions: [s1, s2],
    other,
    otherSession,
    close: async () => {
      approvals.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Where a session's recording files are, and the session as the API and evidence show it.
//
// Files are only ever read from under the recordings directory: a stored path (absolute, or
// relative to the recordings directory) is resolved, symlinks included, and refused when it lands
// outside. Without a stored path (a session still being recorded) the recorder's layout is tried:
// `<recordingsDir>/<approval-id or _none>/<session-id>.cast|.raw` (src/recording/recorder.ts).
import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { recordingPaths } from '../recording/recorder.js';
import type { ForwardedConnection } from '../model/forward.js';
import type { Session, SessionStore } from '../store/types.js';

export type RecordingKind = 'cast' | 'raw';

/** The store's session plus every hash in one place. */
export interface SessionView extends Session {
  sha256: { cast: string | null; raw: string | null; stdin: string | null; stdout: string | null; stderr: string | null };
}

export function sessionView(s: Session): SessionView {
  const ch = s.channelSha256 ?? {};
  return {
    ...s,
    sha256: { cast: s.castSha256, raw: s.rawSha256, stdin: ch['stdin'] ?? null, stdout: ch['stdout'] ?? null, stderr: ch['stderr'] ?? null },
  };
}

/** A session as its detail shows it: a port-forward's with its forwarded connections. */
export type SessionDetail = SessionView & { connections?: ForwardedConnection[] };

export async function sessionDetail(sessions: Pick<SessionStore, 'listConnections'>, s: Session): Promise<SessionDetail> {
  return s.operation === 'portforward' ? { ...sessionView(s), connections: await sessions.listConnections(s.id) } : sessionView(s);
}

export type RecordingLookup =
  | { ok: true; path: string; recordedSha256: string | null }
  /** `none`: the session has no such file recorded; `missing`: recorded but not on disk; `outside`: not under the recordings directory. */
  | { ok: false; reason: 'none' | 'missing' | 'outside'; path?: string; recordedSha256: string | null };

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

export async function findRecording(recordingsDir: string, s: Session, kind: RecordingKind): Promise<RecordingLookup> {
  const stored = kind === 'cast' ? s.castPath : s.rawPath;
  const recordedSha256 = kind === 'cast' ? s.castSha256 : s.rawSha256;
  const root = resolve(recordingsDir);
  let candidate: string | undefined;
  if (stored) candidate = resolve(root, stored);
  else {
    try {
      const paths = recordingPaths(root, s.approvalId, s.id);
      candidate = kind === 'cast' ? paths.castPath : paths.rawPath;
    } catch {
      candidate = undefined; // ids that cannot be file names have no files
    }
  }
  return lookUp(root, candidate, Boolean(stored), recordedSha256);
}

/** A forwarded connection's raw sidecar (its stored path; a refused connection has none). */
export async function findConnectionRaw(recordingsDir: string, c: ForwardedConnection): Promise<RecordingLookup> {
  const root = resolve(recordingsDir);
  return lookUp(root, c.rawPath ? resolve(root, c.rawPath) : undefined, Boolean(c.rawPath), c.rawSha256);
}

/** `candidate` resolved (symlinks included) and refused unless it is under `root`. */
async function lookUp(root: string, candidate: string | undefined, stored: boolean, recordedSha256: string | null): Promise<RecordingLookup> {
  if (candidate === undefined) return { ok: false, reason: 'none', recordedSha256 };
  if (!inside(root, candidate)) return { ok: false, reason: 'outside', path: candidate, recordedSha256 };
  let real: string;
  let realRoot: string;
  try {
    realRoot = await realpath(root);
    real = await realpath(candidate);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
    return { ok: false, reason: stored ? 'missing' : 'none', path: candidate, recordedSha256 };
  }
  if (!inside(realRoot, real)) return { ok: false, reason: 'outside', path: candidate, recordedSha256 };
  return { ok: true, path: real, recordedSha256 };
}

/** Exactly the first `size` bytes of a file (a recording still being written keeps growing). */
export async function* readPrefix(path: string, size: number): AsyncGenerator<Buffer> {
  if (size === 0) return;
  for await (const chunk of createReadStream(path, { start: 0, end: size - 1, highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) yield chunk;
}

/** The first `size` bytes of a file, in memory. */
export async function readPrefixBuffer(path: string, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of readPrefix(path, size)) parts.push(chunk);
  return Buffer.concat(parts);
}

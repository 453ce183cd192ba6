// Evidence bundles: everything a reviewer needs about an approval, a session or a time range, in one
// directory (or one tar archive with the same layout under a top folder), with a signed manifest.
//
//   approval.json                 the approval record (approval and session exports)
//   record.json                   the approval's review record: the five questions answered (record.ts)
//   approvals/<approval-id>.json  the approval records (time-range exports)
//   records/<approval-id>.json    their review records (time-range exports)
//   sessions/<session-id>.json    the session row as the store has it, plus `sha256` with every hash
//                                 (and a port-forward's `connections`)
//   sessions/<session-id>.cast    the asciicast recording (as recorded, or converted to --format)
//   sessions/<session-id>.raw     the exact bytes of every channel (the recorder's sidecar)
//   sessions/<session-id>/<seq>.raw  a port-forward's forwarded connection <seq>: its raw sidecar
//   audit.jsonl                   the audit rows, oldest first, exactly as stored (hash-chain fields
//                                 included): every row of the approval (refused attempts too) and of
//                                 its sessions; for a time range, every row in the range as well
//   checkpoints.jsonl             the bastion's signed audit checkpoints (checkpoints.ts) that cover a
//                                 row of audit.jsonl, and the latest: verify checks them against it
//   manifest.json                 path, size and sha256 of every file above (see manifest.ts)
//   manifest.sig                  base64 Ed25519 signature over manifest.json's exact bytes
//
// Building is two passes over the recordings: the first hashes what will be exported (so the
// manifest, the archive size and the progress total are known before a byte is sent), the second
// streams the same bytes and checks their hash again, failing the export if a file changed in
// between. A recording whose bytes no longer match the sha256 stored at session end, or that is
// gone, is recorded as a problem in the signed manifest, so the bundle cannot verify clean.
import { createHash } from 'node:crypto';
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Approval } from '../model/approval.js';
import { asOf } from '../approvals/service.js';
import { BastionError, ErrorCode } from '../errors/index.js';
import type { AuditEventInput, AuditLog, AuditQuery, AuditRecord, Session, SessionStore } from '../store/types.js';
import { convertCast } from '../recording/convert.js';
import { castFormat, CastParseError } from '../recording/cast-reader.js';
import {
  buildManifest,
  encodeManifest,
  MANIFEST_FILE,
  sha256Hex,
  SIGNATURE_FILE,
  signManifest,
  type CastFormat,
  type EvidenceSubject,
  type Manifest,
  type ManifestProblem,
} from './manifest.js';
import { findConnectionRaw, findRecording, readPrefix, readPrefixBuffer, sessionDetail, type RecordingKind, type RecordingLookup } from './recordings.js';
import { resolveSigningKey, type SigningKeySource } from './signing-key.js';
import { tarChunks, tarSize, type TarWriteEntry } from './tar.js';
import { buildReviewRecord, type ReviewSources } from './record.js';
import { readCheckpointsText } from './audit-trust.js';
import { AUDIT_IN_BUNDLE, bundleCheckpointLines, CHECKPOINTS_IN_BUNDLE } from './bundle-checkpoints.js';

/** Approval records: the ApprovalService (effective states), or the store through storeApprovals(). */
export interface ApprovalSource {
  get(id: string): Promise<Approval | undefined>;
  list(): Promise<Approval[]>;
}

/** The approval store read as the service shows it (pending/approved past expiry: expired). */
export function storeApprovals(store: ApprovalSource, clock: () => Date = () => new Date()): ApprovalSource {
  return {
    get: async (id) => {
      const a = await store.get(id);
      return a && asOf(a, clock());
    },
    list: async () => (await store.list()).map((a) => asOf(a, clock())),
  };
}

export interface EvidenceSources {
  sessions: SessionStore;
  approvals: ApprovalSource;
  audit: AuditLog;
  recordingsDir: string;
  signingKey: SigningKeySource;
  /** The data dir's audit-checkpoints.jsonl: the checkpoints covering the bundle's rows travel with it. */
  checkpointsFile?: string;
  /** Policy versions, for the review records' rule text (without them, record.json is left out). */
  policyVersions?: ReviewSources['policyVersions'];
  clock?: () => Date;
}

export type EvidenceRequest = ({ approvalId: string } | { sessionId: string } | { since: Date; until?: Date }) & {
  /** Convert every cast to this asciicast version; absent: each as recorded. */
  format?: CastFormat;
};

export interface EvidenceProgress {
  /** `hash`: reading everything once to build the manifest; `write`: writing the bundle. */
  phase: 'hash' | 'write';
  done: number;
  total: number;
}
export type ProgressListener = (p: EvidenceProgress) => void;

export interface EvidenceEntry {
  path: string;
  size: number;
  sha256: string;
  /** The exact bytes; fails if they no longer hash to `sha256`. */
  open(): AsyncIterable<Buffer>;
}

export interface EvidencePlan {
  /** The archive's top folder: `evidence-<approval-id>`, `evidence-<session-id>`, `evidence-since-<time>`. */
  name: string;
  manifest: Manifest;
  /** manifest.json and manifest.sig first, then every file in path order. */
  entries: EvidenceEntry[];
  /** Sum of every entry's size. */
  bytes: number;
}

const AUDIT_PAGE = 10_000;

async function allAuditRows(audit: AuditLog, q: AuditQuery): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let afterId = 0;
  for (;;) {
    const rows = await audit.query({ ...q, afterId, limit: AUDIT_PAGE, order: 'asc' });
    out.push(...rows);
    if (rows.length < AUDIT_PAGE) return out;
    afterId = rows[rows.length - 1]!.id;
  }
}

function json(value: unknown): Buffer {
  return Buffer.from(`${JSON.stringify(value, null, 2)}\n`, 'utf8');
}

function compactTime(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/** A file the bundle will contain, before hashing. */
type Source =
  | { kind: 'memory'; path: string; data: Buffer }
  | { kind: 'file'; path: string; file: string; convertTo?: CastFormat; recordedSha256: string | null };

async function* counted(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
}

interface Subject {
  subject: EvidenceSubject;
  name: string;
  approvals: Approval[];
  /** Oldest first. */
  sessions: Session[];
  audit: AuditRecord[];
  /** approval.json (one approval) or approvals/<id>.json. */
  approvalLayout: 'single' | 'many';
}

async function resolveSubject(src: EvidenceSources, req: EvidenceRequest): Promise<Subject> {
  const auditById = new Map<number, AuditRecord>();
  const addAudit = (rows: AuditRecord[]): void => rows.forEach((r) => auditById.set(r.id, r));
  const byStart = (a: Session, b: Session): number => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : a.id < b.id ? -1 : 1);
  let result: Omit<Subject, 'audit'>;
  if ('approvalId' in req) {
    const approval = await src.approvals.get(req.approvalId);
    if (!approval) throw new BastionError(ErrorCode.NOT_FOUND, `approval ${JSON.stringify(req.approvalId)} not found`);
    const sessions = (await src.sessions.list({ approvalId: approval.id })).sort(byStart);
    addAudit(await allAuditRows(src.audit, { approvalId: approval.id }));
    result = { subject: { kind: 'approval', approvalId: approval.id }, name: `evidence-${approval.id}`, approvals: [approval], sessions, approvalLayout: 'single' };
  } else if ('sessionId' in req) {
    const session = await src.sessions.get(req.sessionId);
    if (!session) throw new BastionError(ErrorCode.NOT_FOUND, `session ${JSON.stringify(req.sessionId)} not found`);
    const approval = session.approvalId ? await src.approvals.get(session.approvalId) : undefined;
    if (approval) addAudit(await allAuditRows(src.audit, { approvalId: approval.id }));
    result = {
      subject: { kind: 'session', sessionId: session.id, approvalId: session.approvalId },
      name: `evidence-${session.id}`,
      approvals: approval ? [approval] : [],
      sessions: [session],
      approvalLayout: 'single',
    };
  } else {
    const since = req.since;
    const until = req.until;
    if (Number.isNaN(since.getTime()) || (until && Number.isNaN(until.getTime()))) throw new BastionError(ErrorCode.BAD_REQUEST, 'invalid time range');
    const inRange = (iso: string): boolean => {
      const t = Date.parse(iso);
      return t >= since.getTime() && (until === undefined || t <= until.getTime());
    };
    const sessions = (await src.sessions.list()).filter((s) => inRange(s.startedAt)).sort(byStart);
    const approvals = new Map<string, Approval>();
    for (const a of await src.approvals.list()) if (inRange(a.createdAt)) approvals.set(a.id, a);
    for (const s of sessions) {
      if (s.approvalId && !approvals.has(s.approvalId)) {
        const a = await src.approvals.get(s.approvalId);
        if (a) approvals.set(a.id, a);
      }
    }
    addAudit(await allAuditRows(src.audit, { since, ...(until ? { until } : {}) }));
    for (const id of approvals.keys()) addAudit(await allAuditRows(src.audit, { approvalId: id }));
    result = {
      subject: { kind: 'since', since: since.toISOString(), until: until ? until.toISOString() : null },
      name: `evidence-since-${compactTime(since)}`,
      approvals: [...approvals.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1)),
      sessions,
      approvalLayout: 'many',
    };
  }
  for (const s of result.sessions) addAudit(await allAuditRows(src.audit, { sessionId: s.id }));
  return { ...result, audit: [...auditById.values()].sort((a, b) => a.id - b.id) };
}

/**
 * Gathers, hashes and signs an evidence bundle. NOT_FOUND for an unknown approval or session.
 * `onProgress` sees the hashing pass (the bytes of every file read once).
 */
export async function planEvidence(src: EvidenceSources, req: EvidenceRequest, onProgress?: ProgressListener): Promise<EvidencePlan> {
  const clock = src.clock ?? (() => new Date());
  const key = resolveSigningKey(src.signingKey);
  const subject = await resolveSubject(src, req);
  const format = req.format;
  const problems: ManifestProblem[] = [];

  const sources: Source[] = [];
  const record = async (a: Approval): Promise<Buffer | undefined> =>
    src.policyVersions
      ? json(await buildReviewRecord({ approvals: src.approvals, sessions: src.sessions, audit: src.audit, policyVersions: src.policyVersions, clock }, a.id))
      : undefined;
  if (subject.approvalLayout === 'single') {
    const a = subject.approvals[0];
    if (a) {
      sources.push({ kind: 'memory', path: 'approval.json', data: json(a) });
      const r = await record(a);
      if (r) sources.push({ kind: 'memory', path: 'record.json', data: r });
    }
  } else {
    for (const a of subject.approvals) {
      sources.push({ kind: 'memory', path: `approvals/${a.id}.json`, data: json(a) });
      const r = await record(a);
      if (r) sources.push({ kind: 'memory', path: `records/${a.id}.json`, data: r });
    }
  }
  for (const s of subject.sessions) {
    const detail = await sessionDetail(src.sessions, s);
    sources.push({ kind: 'memory', path: `sessions/${s.id}.json`, data: json(detail) });
    for (const c of detail.connections ?? []) {
      // Each forwarded connection's raw sidecar (a refused one has none).
      const path = connectionRawPath(s.id, c.seq);
      const found = await findConnectionRaw(src.recordingsDir, c);
      if (!found.ok) {
        if (found.reason !== 'none' || found.recordedSha256 !== null) problems.push(missing(path, found));
        continue;
      }
      sources.push({ kind: 'file', path, file: found.path, recordedSha256: found.recordedSha256 });
    }
    for (const kind of ['cast', 'raw'] as RecordingKind[]) {
      const path = `sessions/${s.id}.${kind}`;
      const found = await findRecording(src.recordingsDir, s, kind);
      if (!found.ok) {
        if (found.reason !== 'none' || found.recordedSha256 !== null) problems.push(missing(path, found));
        continue;
      }
      const convertTo = kind === 'cast' ? format : undefined;
      sources.push({ kind: 'file', path, file: found.path, recordedSha256: found.recordedSha256, ...(convertTo ? { convertTo } : {}) });
    }
  }
  sources.push({ kind: 'memory', path: AUDIT_IN_BUNDLE, data: Buffer.from(subject.audit.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8') });
  const checkpointsText = src.checkpointsFile === undefined ? undefined : await readCheckpointsText(src.checkpointsFile);
  if (checkpointsText) {
    const lines = bundleCheckpointLines(checkpointsText, new Set(subject.audit.map((r) => r.id)));
    if (lines !== '') sources.push({ kind: 'memory', path: CHECKPOINTS_IN_BUNDLE, data: Buffer.from(lines, 'utf8') });
  }

  // Pass 1: sizes and hashes.
  const sizes = await Promise.all(sources.map(async (s) => (s.kind === 'memory' ? s.data.length : (await stat(s.file)).size)));
  const hashTotal = sizes.reduce((a, b) => a + b, 0);
  let hashed = 0;
  const tick = (n: number): void => {
    hashed += n;
    onProgress?.({ phase: 'hash', done: Math.min(hashed, hashTotal), total: hashTotal });
  };
  const entries: EvidenceEntry[] = [];
  for (const [i, s] of sources.entries()) {
    const sourceSize = sizes[i]!;
    if (s.kind === 'memory') {
      const data = s.data;
      entries.push({ path: s.path, size: data.length, sha256: sha256Hex(data), open: async function* () { yield data; } });
      tick(data.length);
      continue;
    }
    const read = (): AsyncGenerator<Buffer> => readPrefix(s.file, sourceSize);
    if (s.convertTo && sourceSize > 0) {
      // Conversion (src/recording/convert.ts) works on the whole text: one cast in memory at a time,
      // converted again when written rather than kept.
      const to = s.convertTo;
      const source = await readPrefixBuffer(s.file, sourceSize);
      tick(source.length);
      const sourceDigest = sha256Hex(source);
      if (s.recordedSha256 !== null && sourceDigest !== s.recordedSha256) problems.push(changed(s.path, sourceDigest, s.recordedSha256));
      let converted: Buffer | undefined;
      try {
        converted = convertIfNeeded(source, to);
      } catch (err) {
        if (!(err instanceof CastParseError)) throw err;
        problems.push({ kind: 'MISMATCH', path: s.path, message: `not a valid asciicast (${err.message}); exported as recorded, not converted to ${to}` });
      }
      if (converted === undefined) {
        entries.push(fileEntry(s.path, source.length, sourceDigest, read));
      } else {
        const file = s.file;
        const produce = async function* (): AsyncGenerator<Buffer> {
          yield convertIfNeeded(await readPrefixBuffer(file, sourceSize), to);
        };
        entries.push(fileEntry(s.path, converted.length, sha256Hex(converted), produce));
      }
      continue;
    }
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of counted(read(), tick)) {
      hash.update(chunk);
      size += chunk.length;
    }
    const digest = hash.digest('hex');
    if (s.recordedSha256 !== null && digest !== s.recordedSha256) problems.push(changed(s.path, digest, s.recordedSha256));
    entries.push(fileEntry(s.path, size, digest, read));
  }

  const manifest = buildManifest({
    createdAt: clock(),
    key,
    subject: subject.subject,
    castFormat: format ?? null,
    files: entries.map((e) => ({ path: e.path, size: e.size, sha256: e.sha256 })),
    problems,
  });
  const manifestBytes = encodeManifest(manifest);
  const sigBytes = signManifest(manifestBytes, key);
  const head: EvidenceEntry[] = [
    { path: MANIFEST_FILE, size: manifestBytes.length, sha256: sha256Hex(manifestBytes), open: async function* () { yield manifestBytes; } },
    { path: SIGNATURE_FILE, size: sigBytes.length, sha256: sha256Hex(sigBytes), open: async function* () { yield sigBytes; } },
  ];
  const all = [...head, ...entries.sort((a, b) => (a.path < b.path ? -1 : 1))];
  return { name: subject.name, manifest, entries: all, bytes: all.reduce((n, e) => n + e.size, 0) };
}

/** The cast in `to`: as it is when it already is in that version, else re-encoded. */
function convertIfNeeded(source: Buffer, to: CastFormat): Buffer {
  const text = source.toString('utf8');
  if (castFormat(text) === to) return source;
  return Buffer.from(convertCast(text, to), 'utf8');
}

/** Where a forwarded connection's raw sidecar is in a bundle. */
export function connectionRawPath(sessionId: string, seq: number): string {
  return `sessions/${sessionId}/${seq}.raw`;
}

/** A recording the bundle cannot carry: gone, outside the recordings directory, or hashed but never written. */
function missing(path: string, found: RecordingLookup & { ok: false }): ManifestProblem {
  if (found.reason === 'missing') return { kind: 'MISSING', path, message: `the recording file ${found.path} is gone from the bastion` };
  if (found.reason === 'outside') return { kind: 'MISSING', path, message: `the recorded path ${found.path} is outside the recordings directory; not exported` };
  return { kind: 'MISSING', path, message: 'the session has a recorded sha256 but no file' };
}

function changed(path: string, actual: string, recorded: string): ManifestProblem {
  return {
    kind: 'MISMATCH',
    path,
    message: `the bastion's file has sha256 ${actual}, but the sha256 recorded when the session ended is ${recorded}: the recording was changed after it was written`,
  };
}

function fileEntry(path: string, size: number, sha256: string, produce: () => AsyncIterable<Buffer>): EvidenceEntry {
  return {
    path,
    size,
    sha256,
    open: async function* () {
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of produce()) {
        h.update(chunk);
        n += chunk.length;
        yield chunk;
      }
      const digest = h.digest('hex');
      if (n !== size || digest !== sha256) {
        throw new BastionError(ErrorCode.INTERNAL, `${path} changed while it was being exported (sha256 ${digest}, ${n} bytes; expected ${sha256}, ${size} bytes)`);
      }
    },
  };
}

/** The directories an evidence layout needs, parents first. */
function directories(entries: EvidenceEntry[]): string[] {
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort();
}

function tarEntries(plan: EvidencePlan, onBytes?: (n: number) => void): TarWriteEntry[] {
  const mtime = new Date(plan.manifest.createdAt);
  return [
    { type: 'directory', name: plan.name, mtime },
    ...directories(plan.entries).map((d): TarWriteEntry => ({ type: 'directory', name: `${plan.name}/${d}`, mtime })),
    ...plan.entries.map(
      (e): TarWriteEntry => ({
        type: 'file',
        name: `${plan.name}/${e.path}`,
        size: e.size,
        mtime,
        body: () => (onBytes ? counted(e.open(), onBytes) : e.open()),
      }),
    ),
  ];
}

/** Bytes of the evidence archive (for Content-Length). */
export function evidenceTarSize(plan: EvidencePlan): number {
  return tarSize(tarEntries(plan));
}

/** The bundle as a ustar archive under the top folder `plan.name/`. */
export function evidenceTar(plan: EvidencePlan, onProgress?: ProgressListener): AsyncGenerator<Buffer> {
  let done = 0;
  const total = plan.bytes;
  return tarChunks(
    tarEntries(
      plan,
      onProgress &&
        ((n) => {
          done += n;
          onProgress({ phase: 'write', done, total });
        }),
    ),
  );
}

/** Writes the bundle into `dir` (created if needed; files that exist already are not overwritten). */
export async function writeEvidenceDir(plan: EvidencePlan, dir: string, onProgress?: ProgressListener): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const d of directories(plan.entries)) await mkdir(join(dir, ...d.split('/')), { recursive: true, mode: 0o700 });
  let done = 0;
  for (const e of plan.entries) {
    const target = join(dir, ...e.path.split('/'));
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const fh = await open(target, 'wx', 0o600);
    try {
      for await (const chunk of e.open()) {
        await fh.write(chunk);
        done += chunk.length;
        onProgress?.({ phase: 'write', done, total: plan.bytes });
      }
    } finally {
      await fh.close();
    }
  }
}

/** The audit event for an export: who took which evidence (`user:<name>`, or `cli` for --data-dir). */
export function evidenceAuditEvent(plan: EvidencePlan, actor: string): AuditEventInput {
  const subject = plan.manifest.subject;
  const manifest = plan.entries.find((e) => e.path === MANIFEST_FILE);
  return {
    event: 'evidence.exported',
    actor,
    approvalId: subject.kind === 'since' ? null : subject.approvalId,
    sessionId: subject.kind === 'session' ? subject.sessionId : null,
    details: {
      subject,
      castFormat: plan.manifest.castFormat,
      files: plan.manifest.files.length,
      keyId: plan.manifest.key.id,
      manifestSha256: manifest?.sha256 ?? null,
    },
  };
}

// Sessions and evidence on the control API (readers: reviewer, approver, admin).
//
//   GET /v1/sessions?approval=ID[&agent=A][&state=open|ended][&since=T][&until=T]   {items: Session[]}
//   GET /v1/sessions/:id                          one session (the store's row plus `sha256`)
//   GET /v1/sessions/:id/recording[?format=v2|v3]  the asciicast (as recorded unless told)
//   GET /v1/sessions/:id/raw                      the exact-bytes sidecar
//   GET /v1/approvals/:id/evidence[?format=v2|v3]  the approval's evidence archive (application/x-tar)
//   GET /v1/evidence?approval=ID|session=ID|since=T[&until=T][&format=v2|v3]   the same for a session or a time range
//
// Files are streamed, and only from under the recordings directory. Every download of a recording
// and every evidence export is an audit event (who took which file), so the review record shows its
// own chain of custody.
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { stat } from 'node:fs/promises';
import { isBastionError } from '../errors/index.js';
import { evidenceAuditEvent, evidenceTar, evidenceTarSize, planEvidence, type ApprovalSource, type EvidenceRequest } from '../evidence/bundle.js';
import { castFileFormat, CastParseError } from '../recording/cast-reader.js';
import { convertCast } from '../recording/convert.js';
import { MANIFEST_FILE, type CastFormat } from '../evidence/manifest.js';
import { findRecording, readPrefix, readPrefixBuffer, sessionView, type RecordingKind } from '../evidence/recordings.js';
import type { SigningKeySource } from '../evidence/signing-key.js';
import type { AuditLog, Session, SessionStore, User } from '../store/types.js';
import { READERS, type Authenticate } from './auth.js';
import { ApiProblem, sendJson } from './http.js';
import type { Router } from './router.js';

export interface SessionRoutesDeps {
  sessions: SessionStore;
  /** The ApprovalService (anything with get and list). */
  approvals: ApprovalSource;
  audit: AuditLog;
  recordingsDir: string;
  /** The bastion's Ed25519 key, or a function loading it on first use (lazySigningKey(dataDir)). */
  signingKey: SigningKeySource;
  authenticate: Authenticate;
  clock?: () => Date;
}

export const CAST_CONTENT_TYPE = 'application/x-asciicast';
export const RAW_CONTENT_TYPE = 'application/octet-stream';
export const TAR_CONTENT_TYPE = 'application/x-tar';

const CAST_FORMATS: readonly CastFormat[] = ['v2', 'v3'];

function checkQuery(query: URLSearchParams, allowed: readonly string[]): void {
  for (const key of query.keys()) {
    if (!allowed.includes(key)) {
      throw new ApiProblem(400, 'INVALID_QUERY', `unknown query parameter "${key}" (allowed: ${allowed.length ? allowed.join(', ') : 'none'})`, key);
    }
  }
  for (const key of new Set(query.keys())) {
    if (query.getAll(key).length > 1) throw new ApiProblem(400, 'INVALID_QUERY', `"${key}" given more than once`, key);
  }
}

function nonEmpty(query: URLSearchParams, key: string): string | undefined {
  const v = query.get(key);
  if (v === null) return undefined;
  if (v.trim() === '') throw new ApiProblem(400, 'INVALID_QUERY', `"${key}" must not be empty`, key);
  return v;
}

function time(query: URLSearchParams, key: string): Date | undefined {
  const v = nonEmpty(query, key);
  if (v === undefined) return undefined;
  const ms = Date.parse(v);
  if (!/^\d{4}-\d\d-\d\d/.test(v) || Number.isNaN(ms)) throw new ApiProblem(400, 'INVALID_QUERY', `"${key}" must be an ISO 8601 time, e.g. 2025-06-02T09:00:00Z`, key);
  return new Date(ms);
}

function format(query: URLSearchParams): CastFormat | undefined {
  const v = query.get('format');
  if (v === null) return undefined;
  if (!(CAST_FORMATS as readonly string[]).includes(v)) throw new ApiProblem(400, 'INVALID_QUERY', '"format" must be v2 or v3 (asciicast version)', 'format');
  return v as CastFormat;
}

function attachment(filename: string): string {
  return `attachment; filename="${filename.replace(/[^A-Za-z0-9._-]/g, '_')}"`;
}

async function send(res: ServerResponse, headers: Record<string, string | number>, body: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
  res.writeHead(200, { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
  await pipeline(Readable.from(body), res);
}

export function registerSessionRoutes(router: Router, deps: SessionRoutesDeps): void {
  const { sessions, authenticate } = deps;

  const getSession = async (id: string): Promise<Session> => {
    const s = await sessions.get(id);
    if (!s) throw new ApiProblem(404, 'NOT_FOUND', `session ${JSON.stringify(id)} not found`);
    return s;
  };

  const recordAccess = async (user: User, s: Session, file: RecordingKind, extra: Record<string, unknown>): Promise<void> => {
    await deps.audit.append({
      event: 'session.recording.accessed',
      actor: `user:${user.name}`,
      approvalId: s.approvalId,
      sessionId: s.id,
      details: { file, ...extra },
    });
  };

  const file = async (id: string, kind: RecordingKind): Promise<{ session: Session; path: string; size: number }> => {
    const session = await getSession(id);
    const found = await findRecording(deps.recordingsDir, session, kind);
    const what = kind === 'cast' ? 'recording' : 'raw sidecar';
    if (!found.ok) {
      const why = found.reason === 'none' ? 'has no' : found.reason === 'missing' ? 'has a recorded but missing' : 'has an unservable';
      throw new ApiProblem(404, 'NOT_FOUND', `session ${session.id} ${why} ${what}`);
    }
    return { session, path: found.path, size: (await stat(found.path)).size };
  };

  const evidence = async (user: User, res: ServerResponse, req: EvidenceRequest): Promise<void> => {
    let plan;
    try {
      plan = await planEvidence(
        { sessions, approvals: deps.approvals, audit: deps.audit, recordingsDir: deps.recordingsDir, signingKey: deps.signingKey, ...(deps.clock ? { clock: deps.clock } : {}) },
        req,
      );
    } catch (err) {
      if (isBastionError(err, 'NOT_FOUND')) throw new ApiProblem(404, 'NOT_FOUND', err.message);
      if (isBastionError(err, 'BAD_REQUEST')) throw new ApiProblem(400, 'INVALID_QUERY', err.message);
      throw err;
    }
    const manifest = plan.entries.find((e) => e.path === MANIFEST_FILE)!;
    await deps.audit.append(evidenceAuditEvent(plan, `user:${user.name}`));
    await send(
      res,
      {
        'Content-Type': TAR_CONTENT_TYPE,
        'Content-Length': evidenceTarSize(plan),
        'Content-Disposition': attachment(`${plan.name}.tar`),
        'X-Evidence-Key-Id': plan.manifest.key.id,
        'X-Evidence-Manifest-Sha256': manifest.sha256,
      },
      evidenceTar(plan),
    );
  };

  router
    .add('GET', '/v1/sessions', async ({ req, res, query }) => {
      await authenticate(req, READERS);
      checkQuery(query, ['approval', 'agent', 'state', 'since', 'until']);
      const approvalId = nonEmpty(query, 'approval');
      const agent = nonEmpty(query, 'agent');
      const state = query.get('state');
      if (state !== null && state !== 'open' && state !== 'ended') throw new ApiProblem(400, 'INVALID_QUERY', '"state" must be open or ended', 'state');
      const since = time(query, 'since');
      const until = time(query, 'until');
      const items = (
        await sessions.list({
          ...(approvalId !== undefined ? { approvalId } : {}),
          ...(agent !== undefined ? { agent } : {}),
          ...(state !== null ? { state } : {}),
        })
      ).filter((s) => {
        const t = Date.parse(s.startedAt);
        return (since === undefined || t >= since.getTime()) && (until === undefined || t <= until.getTime());
      });
      sendJson(res, 200, { items: items.map(sessionView) });
    })
    .add('GET', '/v1/sessions/:id', async ({ req, res, params, query }) => {
      await authenticate(req, READERS);
      checkQuery(query, []);
      sendJson(res, 200, sessionView(await getSession(params.id!)));
    })
    .add('GET', '/v1/sessions/:id/recording', async ({ req, res, params, query }) => {
      const user = await authenticate(req, READERS);
      checkQuery(query, ['format']);
      const to = format(query);
      const { session, path, size } = await file(params.id!, 'cast');
      let from: CastFormat | undefined;
      try {
        from = size > 0 ? await castFileFormat(path) : undefined;
      } catch {
        from = undefined;
      }
      // (An empty cast: a TTY session whose header waits for the first event; nothing to convert.)
      const convert = to !== undefined && size > 0 && to !== from;
      let body: AsyncIterable<Buffer> | Iterable<Buffer> = readPrefix(path, size);
      let length = size;
      if (convert) {
        const source = await readPrefixBuffer(path, size);
        let converted: string;
        try {
          if (from === undefined) throw new CastParseError('not an asciicast v2 or v3 header', 1);
          converted = convertCast(source.toString('utf8'), to);
        } catch (err) {
          if (!(err instanceof CastParseError)) throw err;
          throw new ApiProblem(409, 'INVALID_RECORDING', `session ${session.id}'s recording cannot be converted (${err.message}); download it as recorded (without "format")`);
        }
        const bytes = Buffer.from(converted, 'utf8');
        body = [bytes];
        length = bytes.length;
      }
      await recordAccess(user, session, 'cast', { format: convert ? to : (from ?? null), converted: convert });
      await send(
        res,
        {
          'Content-Type': CAST_CONTENT_TYPE,
          'Content-Length': length,
          'Content-Disposition': attachment(`${session.id}.cast`),
          'X-Asciicast-Version': (convert ? to : from) ?? 'unknown',
        },
        body,
      );
    })
    .add('GET', '/v1/sessions/:id/raw', async ({ req, res, params, query }) => {
      const user = await authenticate(req, READERS);
      checkQuery(query, []);
      const { session, path, size } = await file(params.id!, 'raw');
      await recordAccess(user, session, 'raw', {});
      await send(res, { 'Content-Type': RAW_CONTENT_TYPE, 'Content-Length': size, 'Content-Disposition': attachment(`${session.id}.raw`) }, readPrefix(path, size));
    })
    .add('GET', '/v1/approvals/:id/evidence', async ({ req, res, params, query }) => {
      const user = await authenticate(req, READERS);
      checkQuery(query, ['format']);
      const f = format(query);
      await evidence(user, res, { approvalId: params.id!, ...(f ? { format: f } : {}) });
    })
    .add('GET', '/v1/evidence', async ({ req, res, query }) => {
      const user = await authenticate(req, READERS);
      checkQuery(query, ['approval', 'session', 'since', 'until', 'format']);
      const f = format(query);
      const approvalId = nonEmpty(query, 'approval');
      const sessionId = nonEmpty(query, 'session');
      const since = time(query, 'since');
      const until = time(query, 'until');
      const given = [approvalId, sessionId, since].filter((v) => v !== undefined).length;
      if (given !== 1) throw new ApiProblem(400, 'INVALID_QUERY', 'give exactly one of "approval", "session" or "since"', given === 0 ? 'approval' : 'session');
      if (until !== undefined && since === undefined) throw new ApiProblem(400, 'INVALID_QUERY', '"until" goes with "since"', 'until');
      if (since !== undefined && until !== undefined && until < since) throw new ApiProblem(400, 'INVALID_QUERY', '"until" is before "since"', 'until');
      const fmt = f ? { format: f } : {};
      const request: EvidenceRequest =
        approvalId !== undefined
          ? { approvalId, ...fmt }
          : sessionId !== undefined
            ? { sessionId, ...fmt }
            : { since: since!, ...(until ? { until } : {}), ...fmt };
      await evidence(user, res, request);
    });
}

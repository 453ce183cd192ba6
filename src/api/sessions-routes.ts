// Sessions and evidence on the control API (readers: reviewer, approver, admin).
//
//   GET /v1/sessions?approval=ID[&agent=A][&state=open|ended][&since=T][&until=T]   {items: Session[]}
//   GET /v1/sessions/:id                          one session (the store's row plus `sha256`; a port-forward's `connections`)
//   GET /v1/sessions/:id/recording[?format=v2|v3]  the asciicast (as recorded unless told)
//   GET /v1/sessions/:id/raw                      the exact-bytes sidecar
//   GET /v1/approvals/:id/evidence[?format=v2|v3]  the approval's evidence archive (application/x-tar)
//   GET /v1/evidence?approval=ID|session=ID|since=T[&until=T][&format=v2|v3]   the same for a session or a time range
//
// Files are streamed, and only from under the recordings directory. Every download of a recording
// and every evidence export is an audit event (who took which file), so the review record shows its
// own chain of custody. The routes' schemas and examples are in contract.ts.
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { stat } from 'node:fs/promises';
import { BastionError, ErrorCode } from '../errors/index.js';
import { evidenceAuditEvent, evidenceTar, evidenceTarSize, planEvidence, type ApprovalSource, type EvidenceRequest } from '../evidence/bundle.js';
import { castFileFormat, CastParseError } from '../recording/cast-reader.js';
import { convertCast } from '../recording/convert.js';
import { MANIFEST_FILE, type CastFormat } from '../evidence/manifest.js';
import { findRecording, readPrefix, readPrefixBuffer, sessionDetail, sessionView, type RecordingKind } from '../evidence/recordings.js';
import type { SigningKeySource } from '../evidence/signing-key.js';
import type { ReviewSources } from '../evidence/record.js';
import type { AuditLog, Session, SessionStore, User } from '../store/types.js';
import type { Authenticate } from './auth.js';
import { getApprovalEvidence, getEvidence, getSession, getSessionRaw, getSessionRecording, listSessions } from './contract.js';
import { attachment, notFound } from './http.js';
import { ApiRouter } from './mount.js';

export interface SessionRoutesDeps {
  sessions: SessionStore;
  /** The ApprovalService (anything with get and list). */
  approvals: ApprovalSource;
  audit: AuditLog;
  recordingsDir: string;
  /** The bastion's Ed25519 key, or a function loading it on first use (lazySigningKey(dataDir)). */
  signingKey: SigningKeySource;
  /** The data dir's audit-checkpoints.jsonl: bundles carry the checkpoints covering their rows. */
  checkpointsFile?: string;
  /** For the review record in approval exports. */
  policyVersions?: ReviewSources['policyVersions'];
  authenticate: Authenticate;
  clock?: () => Date;
}

export const CAST_CONTENT_TYPE = 'application/x-asciicast';
export const RAW_CONTENT_TYPE = 'application/octet-stream';
export const TAR_CONTENT_TYPE = 'application/x-tar';

async function send(res: ServerResponse, headers: Record<string, string | number>, body: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
  res.writeHead(200, { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...headers });
  await pipeline(Readable.from(body), res);
}

export function sessionRoutes(deps: SessionRoutesDeps): ApiRouter {
  const { sessions } = deps;

  const loadSession = async (id: string): Promise<Session> => {
    const s = await sessions.get(id);
    if (!s) throw notFound(`session ${JSON.stringify(id)}`);
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
    const session = await loadSession(id);
    const found = await findRecording(deps.recordingsDir, session, kind);
    const what = kind === 'cast' ? 'recording' : 'raw sidecar';
    if (!found.ok) {
      const why = found.reason === 'none' ? 'has no' : found.reason === 'missing' ? 'has a recorded but missing' : 'has an unservable';
      throw new BastionError(ErrorCode.NOT_FOUND, `session ${session.id} ${why} ${what}`);
    }
    return { session, path: found.path, size: (await stat(found.path)).size };
  };

  const evidence = async (user: User, res: ServerResponse, req: EvidenceRequest): Promise<void> => {
    const plan = await planEvidence(
      { sessions, approvals: deps.approvals, audit: deps.audit, recordingsDir: deps.recordingsDir, signingKey: deps.signingKey, ...(deps.checkpointsFile ? { checkpointsFile: deps.checkpointsFile } : {}), ...(deps.policyVersions ? { policyVersions: deps.policyVersions } : {}), ...(deps.clock ? { clock: deps.clock } : {}) },
      req,
    );
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

  return new ApiRouter(deps.authenticate)
    .add(listSessions, async ({ query }) => {
      const since = query.since === undefined ? undefined : Date.parse(query.since);
      const until = query.until === undefined ? undefined : Date.parse(query.until);
      const items = (
        await sessions.list({
          ...(query.approval !== undefined ? { approvalId: query.approval } : {}),
          ...(query.agent !== undefined ? { agent: query.agent } : {}),
          ...(query.state !== undefined ? { state: query.state } : {}),
        })
      ).filter((s) => {
        const t = Date.parse(s.startedAt);
        return (since === undefined || t >= since) && (until === undefined || t <= until);
      });
      return { items: items.map(sessionView) };
    })
    .add(getSession, async ({ params }) => sessionDetail(sessions, await loadSession(params.id)))
    .add(getSessionRecording, async ({ res, user, params, query }) => {
      const to = query.format;
      const { session, path, size } = await file(params.id, 'cast');
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
          throw new BastionError(
            ErrorCode.INVALID_RECORDING,
            `session ${session.id}'s recording cannot be converted (${err.message}); download it as recorded (without "format")`,
          );
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
    .add(getSessionRaw, async ({ res, user, params }) => {
      const { session, path, size } = await file(params.id, 'raw');
      await recordAccess(user, session, 'raw', {});
      await send(res, { 'Content-Type': RAW_CONTENT_TYPE, 'Content-Length': size, 'Content-Disposition': attachment(`${session.id}.raw`) }, readPrefix(path, size));
    })
    .add(getApprovalEvidence, async ({ res, user, params, query }) => {
      await evidence(user, res, { approvalId: params.id, ...(query.format ? { format: query.format } : {}) });
    })
    .add(getEvidence, async ({ res, user, query }) => {
      const fmt = query.format ? { format: query.format } : {};
      const request: EvidenceRequest =
        query.approval !== undefined
          ? { approvalId: query.approval, ...fmt }
          : query.session !== undefined
            ? { sessionId: query.session, ...fmt }
            : { since: new Date(Date.parse(query.since!)), ...(query.until !== undefined ? { until: new Date(Date.parse(query.until)) } : {}), ...fmt };
      await evidence(user, res, request);
    });
}

// /v1/sessions and the evidence archives over real HTTP: a ControlEndpoint on 127.0.0.1:0 over a
// real store, sessions and recording files created directly.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCast } from '../recording/convert.js';
import { verifyEvidenceDir, type Manifest } from '../evidence/manifest.js';
import { lazySigningKey } from '../evidence/signing-key.js';
import { castV2, fixture, forwardedSession, recordedSession, sha, type Fixture } from '../evidence/test-support.js';
import { SessionDetailSchema } from './schemas.js';
import { listTar } from '../evidence/tar.js';
import { unpackEvidenceTar } from '../evidence/unpack.js';
import { userAuthenticator } from './auth.js';
import type { ControlEndpoint } from './control-endpoint.js';
import { startTestControl } from './test-support.js';
import { openApiDocument } from './openapi.js';
import { sessionRoutes } from './sessions-routes.js';

let f: Fixture;
let control: ControlEndpoint;
let rita: string;
let out: string;

beforeAll(async () => {
  f = await fixture('kb-sessions-api-');
  out = mkdtempSync(join(tmpdir(), 'kb-sessions-api-out-'));
  control = await startTestControl({ store: f.store, approvals: f.approvals, recordingsDir: f.recordingsDir, dataDir: f.dataDir });
  rita = (await f.store.users.createUser('rita', 'reviewer')).token;
});

afterAll(async () => {
  await control?.close();
  await f?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

async function get(path: string, token: string | null = rita): Promise<Response> {
  return fetch(`${control.url}${path}`, token === null ? {} : { headers: { Authorization: `Bearer ${token}` } });
}

async function json<T = Record<string, unknown>>(path: string, token: string | null = rita): Promise<{ status: number; body: T }> {
  const res = await get(path, token);
  return { status: res.status, body: (await res.json()) as T };
}

type Problem = { error: { code: string; message: string; field?: string } };
type View = Record<string, unknown> & { id: string; sha256: Record<string, string | null> };

describe('GET /v1/sessions', () => {
  it('lists the sessions of an approval, each with every hash', async () => {
    const { status, body } = await json<{ items: View[] }>(`/v1/sessions?approval=${f.approval.id}`);
    expect(status).toBe(200);
    expect(body.items.map((s) => s.id).sort()).toEqual(f.sessions.map((s) => s.id).sort());
    const s1 = f.sessions[0]!;
    const v = body.items.find((s) => s.id === s1.id)!;
    expect(v).toMatchObject({ id: s1.id, approvalId: f.approval.id, agent: 'claude', state: 'ended', endReason: 'completed', exitCode: 3 });
    expect(v.sha256).toEqual({ cast: s1.castSha256, raw: s1.rawSha256, stdin: sha('in'), stdout: sha('out'), stderr: sha('err') });
    // Exactly the store's row plus `sha256`.
    const { sha256: _, ...row } = v;
    expect(row).toEqual(JSON.parse(JSON.stringify(s1)));
  });

  it('filters by agent, state and start time, and lists everything without filters', async () => {
    expect((await json<{ items: View[] }>('/v1/sessions')).body.items).toHaveLength(3);
    expect((await json<{ items: View[] }>('/v1/sessions?agent=claude&state=ended')).body.items).toHaveLength(3);
    expect((await json<{ items: View[] }>('/v1/sessions?state=open')).body.items).toHaveLength(0);
    expect((await json<{ items: View[] }>('/v1/sessions?agent=nobody')).body.items).toHaveLength(0);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await json<{ items: View[] }>(`/v1/sessions?since=${future}`)).body.items).toHaveLength(0);
  });

  it('refuses bad queries with the field, and callers without a user token', async () => {
    for (const [q, field] of [
      ['colour=blue', 'colour'],
      ['state=paused', 'state'],
      ['since=yesterday', 'since'],
      ['approval=', 'approval'],
      [`approval=a&approval=b`, 'approval'],
    ] as const) {
      const { status, body } = await json<Problem>(`/v1/sessions?${q}`);
      expect(status, q).toBe(400);
      expect(body.error).toMatchObject({ code: 'INVALID_QUERY', field });
    }
    expect((await get('/v1/sessions', null)).status).toBe(401);
    expect((await get('/v1/sessions', 'kb_user_nonsense')).status).toBe(401);
  });
});

describe('GET /v1/sessions/:id', () => {
  it('answers the session, 404 for an unknown id', async () => {
    const s = f.sessions[1]!;
    const { status, body } = await json<View>(`/v1/sessions/${s.id}`);
    expect(status).toBe(200);
    expect(body.id).toBe(s.id);
    expect(body.sha256.cast).toBe(s.castSha256);
    const missing = await json<Problem>('/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaa');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
    // Not a port-forward: no connections.
    expect(body).not.toHaveProperty('connections');
  });

  it("a port-forward session answers its forwarded connections, in seq order, as the store has them", async () => {
    const approval = await f.approvals.grant(
      { agent: 'claude', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080] }, ttlSeconds: 600, reason: 'INC-9' },
      { kind: 'user', name: 'alice', role: 'approver' },
    );
    const s = await forwardedSession(f, approval, [{ port: 8080, in: 'GET /', out: 'HTTP/1.1 200' }, { port: 5432, refused: 'port 5432 is not among the approved ports (8080)' }]);
    const { status, body } = await json<View & { connections: Record<string, unknown>[] }>(`/v1/sessions/${s.id}`);
    expect(status).toBe(200);
    expect(SessionDetailSchema.safeParse(body).error?.issues ?? []).toEqual([]);
    expect(body).toMatchObject({ id: s.id, operation: 'portforward', container: '', command: [] });
    expect(body.connections).toEqual(JSON.parse(JSON.stringify(await f.store.sessions.listConnections(s.id))));
    expect(body.connections.map((c) => [c['seq'], c['port'], c['outcome'], c['bytesIn'], c['bytesOut'], c['sha256In']])).toEqual([
      [1, 8080, 'closed', 5, 12, sha('GET /')],
      [2, 5432, 'refused', 0, 0, null],
    ]);
    // The list stays one row per session.
    const list = await json<{ items: View[] }>(`/v1/sessions?approval=${approval.id}`);
    expect(list.body.items.map((x) => [x.id, 'connections' in x])).toEqual([[s.id, false]]);
  });
});

describe('GET /v1/sessions/:id/recording and /raw', () => {
  it('streams the cast as recorded, with its type, length and file name, and audits the download', async () => {
    const s = f.sessions[0]!;
    const res = await get(`/v1/sessions/${s.id}/recording`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-asciicast');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${s.id}.cast"`);
    expect(res.headers.get('x-asciicast-version')).toBe('v2');
    const body = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(body.length);
    expect(sha(body)).toBe(s.castSha256);
    const rows = await f.store.audit.query({ sessionId: s.id, event: 'session.recording.accessed' });
    expect(rows.at(-1)).toMatchObject({ actor: 'user:rita', approvalId: f.approval.id });
  });

  it('converts on request (?format=v3 for a v2 cast, ?format=v2 for a v3 one), and serves it as is when it already is', async () => {
    const [s1, s2] = f.sessions;
    const v3 = await get(`/v1/sessions/${s1!.id}/recording?format=v3`);
    expect(v3.headers.get('x-asciicast-version')).toBe('v3');
    const original = (await (await get(`/v1/sessions/${s1!.id}/recording`)).text());
    expect(await v3.text()).toBe(convertCast(original, 'v3'));
    const same = await get(`/v1/sessions/${s2!.id}/recording?format=v3`);
    expect(sha(Buffer.from(await same.arrayBuffer()))).toBe(s2!.castSha256);
    const v2 = await (await get(`/v1/sessions/${s2!.id}/recording?format=v2`)).text();
    expect(JSON.parse(v2.split('\n')[0]!)).toMatchObject({ version: 2, width: 100, height: 30 });
  });

  it('refuses a bad format with 400, unknown sessions with 404', async () => {
    const s = f.sessions[0]!;
    const bad = await json<Problem>(`/v1/sessions/${s.id}/recording?format=v4`);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'INVALID_QUERY', field: 'format' });
    expect((await get('/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaa/recording')).status).toBe(404);
    expect((await get('/v1/sessions/ses_aaaaaaaaaaaaaaaaaaaa/raw')).status).toBe(404);
    expect((await get(`/v1/sessions/${s.id}/raw?format=v2`)).status).toBe(400);
  });

  it('streams the raw sidecar byte for byte', async () => {
    const s = f.sessions[0]!;
    const res = await get(`/v1/sessions/${s.id}/raw`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${s.id}.raw"`);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body.equals(Buffer.from([0, 1, 2, 255, 254, 10, 13, 0x80, 0xc3]))).toBe(true);
  });

  it('serves nothing from outside the recordings directory', async () => {
    const outside = join(f.dir, 'secret.cast');
    writeFileSync(outside, castV2([[0.1, 'o', 'secret']]));
    const s = await recordedSession(f, f.other, castV2([[0.1, 'o', 'x']]), Buffer.from('x'));
    await f.store.sessions.setRecording(s.id, { castPath: outside, rawPath: '../secret.cast' });
    const cast = await json<Problem>(`/v1/sessions/${s.id}/recording`);
    expect(cast.status).toBe(404);
    expect(cast.body.error.message).toMatch(/unservable recording/);
    expect((await get(`/v1/sessions/${s.id}/raw`)).status).toBe(404);
  });
});

async function unpacked(res: Response): Promise<string> {
  const dir = mkdtempSync(join(out, 'evidence-'));
  rmSync(dir, { recursive: true });
  await unpackEvidenceTar([Buffer.from(await res.arrayBuffer())], dir);
  return dir;
}

describe('GET /v1/approvals/:id/evidence', () => {
  it('answers one tar archive under evidence-<id>/ that verifies, and audits the export', async () => {
    const res = await get(`/v1/approvals/${f.approval.id}/evidence`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-tar');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="evidence-${f.approval.id}.tar"`);
    const archive = Buffer.from(await res.clone().arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(archive.length);
    const names = (await listTar(archive)).map((e) => e.name);
    expect(names[0]).toBe(`evidence-${f.approval.id}`);
    for (const s of f.sessions) {
      expect(names).toContain(`evidence-${f.approval.id}/sessions/${s.id}.cast`);
      expect(names).toContain(`evidence-${f.approval.id}/sessions/${s.id}.raw`);
      expect(names).toContain(`evidence-${f.approval.id}/sessions/${s.id}.json`);
    }
    const dir = await unpacked(res);
    const result = await verifyEvidenceDir(dir);
    expect(result.problems).toEqual([]);
    expect(result.keyId).toBe(res.headers.get('x-evidence-key-id'));
    const rows = await f.store.audit.query({ approvalId: f.approval.id, event: 'evidence.exported' });
    expect(rows.at(-1)).toMatchObject({ actor: 'user:rita', approvalId: f.approval.id });
    expect(JSON.parse(rows.at(-1)!.details!)).toMatchObject({ keyId: result.keyId, manifestSha256: res.headers.get('x-evidence-manifest-sha256') });
  });

  it('converts the casts on request', async () => {
    const dir = await unpacked(await get(`/v1/approvals/${f.approval.id}/evidence?format=v3`));
    const result = await verifyEvidenceDir(dir);
    expect(result.ok).toBe(true);
    expect((result.manifest as Manifest).castFormat).toBe('v3');
  });

  it('404 for an unknown approval, 400 for a bad format or query', async () => {
    const missing = await json<Problem>('/v1/approvals/apr_aaaaaaaaaaaaaaaaaaaa/evidence');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
    expect((await json<Problem>(`/v1/approvals/${f.approval.id}/evidence?format=mp4`)).body.error.field).toBe('format');
    expect((await json<Problem>(`/v1/approvals/${f.approval.id}/evidence?since=2025-01-01T00:00:00Z`)).body.error.field).toBe('since');
    expect((await get(`/v1/approvals/${f.approval.id}/evidence`, null)).status).toBe(401);
  });
});

describe('GET /v1/evidence', () => {
  it('exports one session, or a time range', async () => {
    const s = f.sessions[1]!;
    const one = await get(`/v1/evidence?session=${s.id}`);
    expect(one.headers.get('content-disposition')).toBe(`attachment; filename="evidence-${s.id}.tar"`);
    expect((await verifyEvidenceDir(await unpacked(one))).ok).toBe(true);
    const since = new Date(Date.now() - 3600_000).toISOString();
    const range = await get(`/v1/evidence?since=${since}&until=${new Date(Date.now() + 60_000).toISOString()}`);
    expect(range.status).toBe(200);
    const dir = await unpacked(range);
    const result = await verifyEvidenceDir(dir);
    // Everything verifies except what the bastion refused to export: the session (from an earlier
    // test) whose recorded paths point outside the recordings directory.
    expect(result.problems.length).toBe(2);
    for (const p of result.problems) expect(p).toMatchObject({ kind: 'MISSING', message: expect.stringMatching(/outside the recordings directory/) });
    expect(result.manifest!.files.map((x) => x.path)).toContain(`approvals/${f.other.id}.json`);
  });

  it('needs exactly one of approval, session, since', async () => {
    for (const q of ['', `approval=${f.approval.id}&session=${f.sessions[0]!.id}`, 'until=2025-01-01T00:00:00Z', 'since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z']) {
      const { status, body } = await json<Problem>(`/v1/evidence?${q}`);
      expect(status, q).toBe(400);
      expect(body.error.code).toBe('INVALID_QUERY');
    }
    expect((await get('/v1/evidence?session=ses_aaaaaaaaaaaaaaaaaaaa')).status).toBe(404);
  });
});

describe('the OpenAPI document', () => {
  type Obj = Record<string, unknown>;
  const doc = openApiDocument() as Obj;

  it('documents exactly the routes sessionRoutes adds', () => {
    const router = sessionRoutes({
      sessions: f.store.sessions,
      approvals: f.approvals,
      audit: f.store.audit,
      recordingsDir: f.recordingsDir,
      signingKey: lazySigningKey(f.dataDir),
      authenticate: userAuthenticator(f.store.users),
    });
    const paths = doc['paths'] as Obj;
    for (const r of router.list()) {
      const path = r.pattern.replace(/:([^/]+)/g, '{$1}');
      expect((paths[path] as Obj | undefined)?.[r.method.toLowerCase()], `${r.method} ${path}`).toBeDefined();
    }
    expect(router.list().map((r) => `${r.method} ${r.pattern}`)).toEqual([
      'GET /v1/sessions',
      'GET /v1/sessions/:id',
      'GET /v1/sessions/:id/recording',
      'GET /v1/sessions/:id/raw',
      'GET /v1/approvals/:id/evidence',
      'GET /v1/evidence',
    ]);
  });

  it('has a Session schema whose properties are exactly those of a real session', async () => {
    const schema = ((doc['components'] as Obj)['schemas'] as Obj)['Session'] as Obj;
    const { body } = await json<View>(`/v1/sessions/${f.sessions[0]!.id}`);
    expect(Object.keys(schema['properties'] as Obj).sort()).toEqual(Object.keys(body).sort());
    expect([...(schema['required'] as string[])].sort()).toEqual(Object.keys(body).sort());
    const hashes = ((doc['components'] as Obj)['schemas'] as Obj)['SessionHashes'] as Obj;
    expect(Object.keys(hashes['properties'] as Obj).sort()).toEqual(Object.keys(body.sha256).sort());
  });
});

// REST approvals bound to the exact request: the operation and scope a held request makes, joining
// only identical requests, single use counted atomically, and widening by the approver (service
// and the store's trigger).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { tempDataDir } from '../store/test-support.js';
import { parseKubeRequest } from '../model/parse-request.js';
import type { ResourceRequest } from '../model/request.js';
import type { Actor, Approval, ApprovalScope, Operation } from '../model/approval.js';
import { canonicalScope, scopeCovers } from '../model/scope.js';
import { canonicalQuery, restOperation, scopeFor, shapeScope } from './operation.js';
import { SqliteApprovalService } from './service.js';

const ann: Actor = { kind: 'user', name: 'ann', role: 'approver' };
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);
const STRATEGIC = 'application/strategic-merge-patch+json';
const body = (sha256: string | null, contentType: string | null = 'application/json', contentEncoding: string | null = null) => ({ sha256, contentType, contentEncoding });

function resourceRequest(method: string, url: string): ResourceRequest {
  const parsed = parseKubeRequest(method, url);
  if (!parsed.ok || parsed.request.kind !== 'resource') throw new Error(`not a resource request: ${url}`);
  return parsed.request;
}

describe('the operation and scope of a held REST request', () => {
  it('canonical query: sorted by name, repeated parameters keep their order', () => {
    expect(canonicalQuery(new URLSearchParams('validate=Strict&fieldManager=kubectl-create&b=2&a=1&b=1'))).toBe('a=1&b=2&b=1&fieldManager=kubectl-create&validate=Strict');
    expect(canonicalQuery(new URLSearchParams(''))).toBe('');
  });

  it('binds method, canonical path, canonical query, body hash, media type and encoding; asks for one use', () => {
    const req = resourceRequest('POST', '/api/v1/namespaces/demo/secrets?fieldValidation=Strict&fieldManager=kubectl-create');
    const op = restOperation(req, body(SHA_A, 'Application/JSON; charset=utf-8'));
    expect(op).toEqual({
      kind: 'rest',
      verb: 'create',
      resource: 'secrets',
      namespace: 'demo',
      name: '',
      request: { method: 'POST', path: '/api/v1/namespaces/demo/secrets', query: 'fieldManager=kubectl-create&fieldValidation=Strict', bodySha256: SHA_A, contentType: 'application/json', contentEncoding: null },
    });
    expect(JSON.stringify(scopeFor(op))).toBe(
      JSON.stringify({ kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '', request: op.request, maxUses: 1 }),
    );
    expect(shapeScope(op)).toEqual({ kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '' });
    // Without the body facts an operation carries no binding (only shape scopes can cover it).
    expect(restOperation(req)).not.toHaveProperty('request');
  });

  it('the media type keeps its subtype (patch types differ), drops parameters; the encoding is lower-cased', () => {
    const req = resourceRequest('PATCH', '/apis/apps/v1/namespaces/demo/deployments/web');
    const bound = (ct: string | null, ce: string | null = null) => restOperation(req, body(SHA_A, ct, ce)).request!;
    expect(bound('application/strategic-merge-patch+json').contentType).toBe(STRATEGIC);
    expect(bound('application/merge-patch+json; charset=utf-8').contentType).toBe('application/merge-patch+json');
    expect(bound(' Application/JSON-Patch+JSON ').contentType).toBe('application/json-patch+json');
    expect(bound(null).contentType).toBeNull();
    expect(bound('application/json', ' GZIP ').contentEncoding).toBe('gzip');
    expect(bound('application/json', 'gzip,Identity').contentEncoding).toBe('gzip, identity');
  });

  it('a scope bound to one media type or encoding covers no other; an old binding without them covers nothing', () => {
    const req = resourceRequest('PATCH', '/apis/apps/v1/namespaces/demo/deployments/web');
    const scope = scopeFor(restOperation(req, body(SHA_A, STRATEGIC)));
    expect(scopeCovers(scope, restOperation(req, body(SHA_A, `${STRATEGIC}; charset=utf-8`)))).toBe(true);
    expect(scopeCovers(scope, restOperation(req, body(SHA_A, 'application/merge-patch+json')))).toBe(false);
    expect(scopeCovers(scope, restOperation(req, body(SHA_A, null)))).toBe(false);
    expect(scopeCovers(scope, restOperation(req, body(SHA_A, STRATEGIC, 'gzip')))).toBe(false);
    // Stored before the media type was bound: kept as stored by canonicalScope, covers no request.
    const old = JSON.parse(JSON.stringify(scope)) as { request: Record<string, unknown> };
    delete old.request['contentType'];
    delete old.request['contentEncoding'];
    const canonical = canonicalScope(old as unknown as ApprovalScope);
    expect(canonical.kind === 'rest' && canonical.request).toEqual(old.request);
    for (const ct of [STRATEGIC, null]) expect(scopeCovers(canonical, restOperation(req, body(SHA_A, ct)))).toBe(false);
  });
});

describe('REST approvals bound to the request', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let svc: SqliteApprovalService;
  let bot: { id: string; name: string };

  const opFor = (sha: string | null): Operation & { kind: 'rest' } => restOperation(resourceRequest('POST', '/api/v1/namespaces/demo/secrets?fieldManager=kubectl-create'), body(sha));
  const hold = (op: Operation & { kind: 'rest' }) =>
    svc.requestOrJoin({ agent: bot, scope: scopeFor(op), request: { method: 'POST', path: op.request!.path, query: op.request!.query }, holdSeconds: 120 });

  beforeEach(async () => {
    tmp = tempDataDir();
    store = openStore(tmp.dir);
    const a = (await store.agents.createAgent('bot')).agent;
    bot = { id: a.id, name: a.name };
    svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  });
  afterEach(async () => {
    svc.close();
    await store.close();
    tmp.cleanup();
  });

  it('identical requests join one pending approval; another body makes another', async () => {
    const first = await hold(opFor(SHA_A));
    const same = await hold(opFor(SHA_A));
    const other = await hold(opFor(SHA_B));
    expect(first.created).toBe(true);
    expect(same).toMatchObject({ created: false, approval: { id: first.approval.id } });
    expect(other.created).toBe(true);
    expect(other.approval.id).not.toBe(first.approval.id);
  });

  it('the same bytes under another Content-Type or Content-Encoding do not join: another approval each', async () => {
    const req = resourceRequest('PATCH', '/apis/apps/v1/namespaces/demo/deployments/web');
    const strategic = await hold(restOperation(req, body(SHA_A, STRATEGIC)));
    const merge = await hold(restOperation(req, body(SHA_A, 'application/merge-patch+json')));
    const gzip = await hold(restOperation(req, body(SHA_A, STRATEGIC, 'gzip')));
    const again = await hold(restOperation(req, body(SHA_A, `${STRATEGIC}; charset=utf-8`)));
    expect([strategic.created, merge.created, gzip.created, again.created]).toEqual([true, true, true, false]);
    expect(new Set([strategic.approval.id, merge.approval.id, gzip.approval.id]).size).toBe(3);
    expect(again.approval.id).toBe(strategic.approval.id);
    // Approved as asked: the merge patch's twin is not covered by the strategic patch's approval.
    await svc.approve(strategic.approval.id, ann);
    expect(await svc.findUsable(bot.id, restOperation(req, body(SHA_A, 'application/merge-patch+json')))).toBeUndefined();
    expect((await svc.findUsable(bot.id, restOperation(req, body(SHA_A, STRATEGIC))))?.id).toBe(strategic.approval.id);
  });

  it('a binding without contentType is refused as input, naming the field', async () => {
    const op = opFor(SHA_A);
    const { contentType: _ct, ...noType } = op.request!;
    const err: unknown = await svc
      .requestOrJoin({ agent: bot, scope: { ...scopeFor(op), request: noType } as unknown as ApprovalScope, request: { method: 'POST', path: op.request!.path }, holdSeconds: 60 })
      .catch((e: unknown) => e);
    expect(isBastionError(err, 'INVALID_FIELD'), String(err)).toBe(true);
    expect((err as { field?: string }).field).toBe('scope.request.contentType');
  });

  it('approved as asked: covers exactly that request, once; the count is a compare-and-set', async () => {
    const { approval } = await hold(opFor(SHA_A));
    await svc.approve(approval.id, ann);
    expect(await svc.findUsable(bot.id, opFor(SHA_B))).toBeUndefined();
    expect(await svc.findUsable(bot.id, { ...opFor(SHA_A), request: { ...opFor(SHA_A).request!, query: '' } })).toBeUndefined();
    expect((await svc.findUsable(bot.id, opFor(SHA_A)))?.id).toBe(approval.id);
    // Two identical requests racing for the single use: exactly one has it.
    const uses = await Promise.all([svc.useForRequest(approval.id), svc.useForRequest(approval.id), svc.useForRequest(approval.id)]);
    expect(uses.filter(Boolean)).toHaveLength(1);
    expect(await svc.findUsable(bot.id, opFor(SHA_A))).toBeUndefined();
    expect((await svc.get(approval.id))?.sessionsStarted).toBe(1);
    // The same request again asks anew.
    const again = await hold(opFor(SHA_A));
    expect(again.created).toBe(true);
  });

  it('approve with uses: that many identical requests', async () => {
    const { approval } = await hold(opFor(SHA_A));
    const approved = await svc.approve(approval.id, ann, { uses: 2 });
    expect(approved.scope).toMatchObject({ maxUses: 2, request: { bodySha256: SHA_A } });
    expect([await svc.useForRequest(approval.id), await svc.useForRequest(approval.id), await svc.useForRequest(approval.id)]).toEqual([true, true, false]);
  });

  it('approve with scope shape: any body of the same verb, resource, namespace and name; the decision records both scopes', async () => {
    const { approval } = await hold(opFor(SHA_A));
    const approved = await svc.approve(approval.id, ann, { scope: 'shape', reason: 'rotation' });
    expect(approved.scope).toEqual({ kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '' });
    expect(approved.request).toEqual(approval.request);
    expect((await svc.findUsable(bot.id, opFor(SHA_B)))?.id).toBe(approval.id);
    expect(await svc.findUsable(bot.id, { ...opFor(SHA_B), name: 'x' })).toBeUndefined();
    for (let i = 0; i < 3; i++) expect(await svc.useForRequest(approval.id)).toBe(true);
    const rows = (await store.audit.query({ approvalId: approval.id })).filter((r) => r.event === 'approval.approved');
    expect(rows).toHaveLength(1);
    expect(JSON.parse(String(rows[0]!.details))).toMatchObject({ scope: approved.scope, requestedScope: approval.scope, reason: 'rotation' });
  });

  it('shape with uses limits it; uses or scope on a stream approval is refused naming the field', async () => {
    const { approval } = await hold(opFor(SHA_A));
    expect((await svc.approve(approval.id, ann, { scope: 'shape', uses: 1 })).scope).toEqual({ kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '', maxUses: 1 });
    const exec = await svc.requestOrJoin({
      agent: bot,
      scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls']] },
      request: { method: 'GET', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['ls'] },
      holdSeconds: 60,
    });
    for (const [opts, field] of [
      [{ uses: 2 }, 'uses'],
      [{ scope: 'shape' as const }, 'scope'],
      [{ uses: 0 }, 'uses'],
    ] as const) {
      const err: unknown = await svc.approve(exec.approval.id, ann, opts).catch((e: unknown) => e);
      expect(isBastionError(err, 'INVALID_FIELD'), String(err)).toBe(true);
      expect((err as { field?: string }).field).toBe(field);
    }
    expect((await svc.get(exec.approval.id))?.state).toBe('pending');
  });

  it('a direct REST grant may give maxUses; without it, unlimited until expiry', async () => {
    const limited = await svc.grant({ agent: 'bot', scope: { kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '', maxUses: 1 }, ttlSeconds: 60, reason: 'one' }, ann);
    expect([await svc.useForRequest(limited.id), await svc.useForRequest(limited.id)]).toEqual([true, false]);
    const open = await svc.grant({ agent: 'bot', scope: { kind: 'rest', verb: 'delete', resource: 'secrets', namespace: 'demo', name: 'x' }, ttlSeconds: 60, reason: 'any' }, ann);
    for (let i = 0; i < 5; i++) expect(await svc.useForRequest(open.id)).toBe(true);
  });

  it('a pending approval stored before the media type was bound is approved as stored (the trigger compares the binding whole) and covers nothing', async () => {
    const { approval } = await hold(opFor(SHA_A));
    const db = store.db;
    const row = db.prepare('SELECT * FROM approvals WHERE id = ?').get(approval.id) as Record<string, unknown>;
    const oldScope = JSON.parse(String(row['scope'])) as { request: Record<string, unknown> };
    delete oldScope.request['contentType'];
    delete oldScope.request['contentEncoding'];
    const oldId = 'apr_0ldb1nd1ngaaaaaaaaaa';
    const cols = Object.keys(row);
    db.prepare(`INSERT INTO approvals (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run({ ...row, id: oldId, scope: JSON.stringify(oldScope) });
    const approved = await svc.approve(oldId, ann, { uses: 2 });
    expect(approved.scope).toMatchObject({ request: oldScope.request, maxUses: 2 });
    expect(approved.scope.kind === 'rest' && approved.scope.request).toEqual(oldScope.request);
    expect(await svc.findUsable(bot.id, opFor(SHA_A))).toBeUndefined();
  });

  it('the store refuses a scope change at any other time, and a widening that changes the shape', async () => {
    const { approval } = await hold(opFor(SHA_A));
    const db = store.db;
    const setScope = (id: string, scope: unknown, state?: string) =>
      (() => db.prepare(`UPDATE approvals SET scope = ?${state ? `, state = '${state}'` : ''} WHERE id = ?`).run(JSON.stringify(scope), id)) as () => unknown;
    const shape = { kind: 'rest', verb: 'create', resource: 'secrets', namespace: 'demo', name: '' };
    // While pending (no decision): refused.
    expect(setScope(approval.id, shape)).toThrow(/never change/);
    // As it is approved but to another name: refused.
    expect(setScope(approval.id, { ...shape, name: 'other' }, 'approved')).toThrow(/never change/);
    const approved: Approval = await svc.approve(approval.id, ann, { scope: 'shape' });
    // Once approved: refused.
    expect(setScope(approved.id, { ...shape, maxUses: 1 })).toThrow(/never change/);
  });
});

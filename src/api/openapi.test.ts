// The OpenAPI description stays in step with the router (both directions), its references resolve,
// and every example in it (and real approvals from the service) fits the schemas it states.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_UI_PATHS } from './web-ui.js';
import { SqliteApprovalService } from '../approvals/service.js';
import type { ApprovalService } from '../model/approval.js';
import { silentLogger } from '../observability/log.js';
import { createBastionMetrics } from '../observability/metrics.js';
import { openStore } from '../store/index.js';
import { ControlEndpoint, type ControlDeps } from './control-endpoint.js';
import { OPENAPI_PATH, openApiDocument } from './openapi.js';

type Obj = Record<string, unknown>;
const doc = openApiDocument() as Obj;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** A ControlEndpoint over fakes, with the routes it registers itself (nothing added here). */
function endpoint(): ControlEndpoint {
  const unused = new Proxy(
    {},
    {
      get: (_, prop) => {
        if (prop === 'then') return undefined;
        return () => {
          throw new Error(`fake dependency: ${String(prop)} called`);
        };
      },
    },
  );
  const approvals = unused as ApprovalService;
  const deps = {
    agents: unused as ControlDeps['agents'],
    users: unused as ControlDeps['users'],
    audit: unused as ControlDeps['audit'],
    policyVersions: unused as ControlDeps['policyVersions'],
    currentPolicy: () => ({ hash: '0'.repeat(64), origin: 'builtin:default' }),
    metrics: createBastionMetrics().exposition,
    agentKubeconfig: () => '',
    log: silentLogger(),
    approvals,
    sessions: unused as ControlDeps['sessions'],
    recordingsDir: '',
    signingKey: unused as never,
  };
  return new ControlEndpoint(deps, { host: '127.0.0.1', port: 0 });
}

function resolve(value: unknown): unknown {
  let v = value;
  for (let depth = 0; depth < 10; depth++) {
    const r = (v as Obj | undefined)?.['$ref'];
    if (typeof r !== 'string') return v;
    if (!r.startsWith('#/')) throw new Error(`external $ref ${r}`);
    let target: unknown = doc;
    for (const part of r.slice(2).split('/')) target = (target as Obj | undefined)?.[part];
    if (target === undefined) throw new Error(`unresolved $ref ${r}`);
    v = target;
  }
  throw new Error('$ref loop');
}

/** A structural check of `value` against the subset of OpenAPI 3.0 schema this document uses. */
function check(schemaRef: unknown, value: unknown, at = '$'): string[] {
  const s = resolve(schemaRef) as Obj;
  if (value === null) return s['nullable'] === true ? [] : [`${at}: null but not nullable`];
  if (Array.isArray(s['oneOf'])) {
    const matches = (s['oneOf'] as unknown[]).filter((alt) => check(alt, value, at).length === 0).length;
    return matches === 1 ? [] : [`${at}: matches ${matches} of the oneOf alternatives, not exactly one`];
  }
  const errors: string[] = [];
  const type = s['type'];
  const isType: Record<string, (v: unknown) => boolean> = {
    object: (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    array: Array.isArray,
    string: (v) => typeof v === 'string',
    integer: (v) => Number.isInteger(v),
    number: (v) => typeof v === 'number',
    boolean: (v) => typeof v === 'boolean',
  };
  if (typeof type === 'string' && !isType[type]!(value)) return [`${at}: expected ${type}, got ${JSON.stringify(value)}`];
  if (Array.isArray(s['enum']) && !(s['enum'] as unknown[]).includes(value)) errors.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === 'string') {
    if (typeof s['minLength'] === 'number' && value.length < s['minLength']) errors.push(`${at}: shorter than ${s['minLength']}`);
    if (typeof s['pattern'] === 'string' && !new RegExp(s['pattern']).test(value)) errors.push(`${at}: does not match ${s['pattern']}`);
    if (s['format'] === 'date-time' && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value)) errors.push(`${at}: not an ISO 8601 UTC time`);
  }
  if (typeof value === 'number') {
    if (typeof s['minimum'] === 'number' && value < s['minimum']) errors.push(`${at}: below ${s['minimum']}`);
    if (typeof s['maximum'] === 'number' && value > s['maximum']) errors.push(`${at}: above ${s['maximum']}`);
  }
  if (Array.isArray(value)) {
    if (typeof s['minItems'] === 'number' && value.length < s['minItems']) errors.push(`${at}: fewer than ${s['minItems']} items`);
    if (s['items'] !== undefined) value.forEach((item, i) => errors.push(...check(s['items'], item, `${at}[${i}]`)));
  }
  if (isType.object!(value)) {
    const o = value as Obj;
    const props = (s['properties'] ?? {}) as Obj;
    for (const key of (s['required'] ?? []) as string[]) if (!(key in o)) errors.push(`${at}: missing required ${key}`);
    for (const [key, v] of Object.entries(o)) {
      if (key in props) errors.push(...check(props[key], v, `${at}.${key}`));
      else if (s['additionalProperties'] === false) errors.push(`${at}: unexpected property ${key}`);
    }
  }
  return errors;
}

/** Every media type in the document that has both a schema and examples. */
function mediaExamples(): Array<{ where: string; schema: unknown; name: string; value: unknown }> {
  const out: Array<{ where: string; schema: unknown; name: string; value: unknown }> = [];
  const visit = (where: string, content: unknown): void => {
    for (const [type, media] of Object.entries((content ?? {}) as Obj)) {
      const m = media as Obj;
      if (m['example'] !== undefined) out.push({ where: `${where} ${type}`, schema: m['schema'], name: 'example', value: m['example'] });
      for (const [name, ex] of Object.entries((m['examples'] ?? {}) as Obj)) {
        out.push({ where: `${where} ${type}`, schema: m['schema'], name, value: (resolve(ex) as Obj)['value'] });
      }
    }
  };
  for (const [path, item] of Object.entries(doc['paths'] as Obj)) {
    for (const [method, op] of Object.entries(item as Obj)) {
      const o = op as Obj;
      if (o['requestBody']) visit(`${method.toUpperCase()} ${path} request`, (resolve(o['requestBody']) as Obj)['content']);
      for (const [status, response] of Object.entries(o['responses'] as Obj)) {
        visit(`${method.toUpperCase()} ${path} ${status}`, (resolve(response) as Obj)['content']);
      }
    }
  }
  return out;
}

function documentedOperations(): string[] {
  return Object.entries(doc['paths'] as Obj).flatMap(([path, item]) =>
    Object.keys(item as Obj)
      .filter((k) => METHODS.includes(k))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe('the OpenAPI document and the router', () => {
  // The web UI's static files are pages, not API operations.
  const routed = [...new Set(endpoint().router.list().filter((r) => !(WEB_UI_PATHS as readonly string[]).includes(r.pattern)).map((r) => `${r.method} ${r.pattern.replace(/:([^/]+)/g, '{$1}')}`))].sort();
  const documented = documentedOperations().sort();

  it('the control endpoint registers the approval and OpenAPI routes itself', () => {
    const patterns = endpoint()
      .router.list()
      .map((r) => `${r.method} ${r.pattern}`);
    expect(patterns).toEqual(
      expect.arrayContaining([
        'GET /v1/approvals',
        'POST /v1/approvals',
        'GET /v1/approvals/:id',
        'POST /v1/approvals/:id/approve',
        'POST /v1/approvals/:id/deny',
        'POST /v1/approvals/:id/revoke',
        `GET ${OPENAPI_PATH}`,
      ]),
    );
  });

  it('documents every route', () => {
    expect(routed.filter((r) => !documented.includes(r)), 'routes missing from src/api/openapi.ts').toEqual([]);
  });

  it('routes every documented operation', () => {
    expect(documented.filter((d) => !routed.includes(d)), 'documented operations with no route').toEqual([]);
  });

  it('covers the routes the issue names', () => {
    for (const op of [
      'GET /healthz',
      'GET /metrics',
      'GET /v1/openapi.json',
      'GET /v1/whoami',
      'GET /v1/agents',
      'POST /v1/agents',
      'GET /v1/agents/{name}',
      'POST /v1/agents/{name}/revoke',
      'GET /v1/users',
      'POST /v1/users',
      'GET /v1/audit',
      'GET /v1/audit/verify',
      'GET /v1/policy',
      'GET /v1/approvals',
      'POST /v1/approvals',
      'GET /v1/approvals/{id}',
      'POST /v1/approvals/{id}/approve',
      'POST /v1/approvals/{id}/deny',
      'POST /v1/approvals/{id}/revoke',
    ]) {
      expect(routed, op).toContain(op);
      expect(documented, op).toContain(op);
    }
  });
});

describe('the OpenAPI document itself', () => {
  it('is OpenAPI 3.0.3 with a bearer scheme, unique operation ids and declared path parameters', () => {
    expect(doc['openapi']).toBe('3.0.3');
    const components = doc['components'] as Obj;
    expect((components['securitySchemes'] as Obj)['bearer']).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
    const ids = new Set<string>();
    for (const [path, item] of Object.entries(doc['paths'] as Obj)) {
      expect(path.startsWith('/')).toBe(true);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item as Obj)) {
        const o = op as Obj;
        expect(typeof o['operationId'], `${method} ${path}`).toBe('string');
        expect(ids.has(o['operationId'] as string), `duplicate ${String(o['operationId'])}`).toBe(false);
        ids.add(o['operationId'] as string);
        expect(Object.keys(o['responses'] as Obj).length).toBeGreaterThan(0);
        const declared = ((o['parameters'] ?? []) as Obj[]).filter((p) => p['in'] === 'path').map((p) => p['name']);
        expect(declared.sort(), `${method} ${path} path parameters`).toEqual([...templated].sort());
      }
    }
  });

  it('has only references that resolve', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === 'object' && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(() => resolve({ $ref: r }), r).not.toThrow();
  });

  it('describes approvals with the fields the issue requires, in camelCase', () => {
    const approval = resolve({ $ref: '#/components/schemas/Approval' }) as Obj;
    for (const f of ['id', 'state', 'agent', 'scope', 'requestedBy', 'decidedBy', 'reason', 'createdAt', 'decidedAt', 'expiresAt']) {
      expect(approval['required'], f).toContain(f);
    }
    expect(((approval['properties'] as Obj)['state'] as Obj)['enum']).toEqual(['pending', 'approved', 'denied', 'revoked', 'expired']);
  });

  it('has examples that fit their schemas, including every approval example', () => {
    const examples = mediaExamples();
    const approvalExamples = examples.filter((e) => (e.schema as Obj)['$ref'] === '#/components/schemas/Approval');
    expect(new Set(approvalExamples.map((e) => e.name)).size).toBeGreaterThanOrEqual(4);
    expect(examples.length).toBeGreaterThan(approvalExamples.length);
    for (const e of examples) expect(check(e.schema, e.value), `${e.where} example ${e.name}`).toEqual([]);
    // And every Approval-shaped component example (referenced or not).
    for (const [name, ex] of Object.entries((doc['components'] as Obj)['examples'] as Obj)) {
      const value = (ex as Obj)['value'] as Obj;
      if ('state' in value && 'scope' in value) expect(check({ $ref: '#/components/schemas/Approval' }, value), name).toEqual([]);
    }
  });

  it('the checker itself rejects what the schema does not allow', () => {
    const good = ((doc['components'] as Obj)['examples'] as Obj)['PendingExec'] as Obj;
    const a = structuredClone(good['value']) as Obj;
    const approvalRef = { $ref: '#/components/schemas/Approval' };
    expect(check(approvalRef, a)).toEqual([]);
    expect(check(approvalRef, { ...a, state: 'limbo' })).not.toEqual([]);
    expect(check(approvalRef, { ...a, extra: 1 })).not.toEqual([]);
    expect(check(approvalRef, { ...a, createdAt: 'yesterday' })).not.toEqual([]);
    expect(check(approvalRef, { ...a, scope: { ...(a['scope'] as Obj), verb: 'get' } })).not.toEqual([]);
    const { decidedBy: _, ...missing } = a;
    expect(check(approvalRef, missing)).not.toEqual([]);
  });
});

describe('real approvals fit the Approval schema', () => {
  let dir: string;
  let store: ReturnType<typeof openStore>;
  let service: SqliteApprovalService;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kb-openapi-'));
    store = openStore(join(dir, 'data'));
    service = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, audit: store.audit });
  });
  afterAll(async () => {
    service.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('in every state the API can show', async () => {
    const { agent } = await store.agents.createAgent('claude');
    const alice = { kind: 'user', name: 'alice', role: 'approver' } as const;
    const bob = { kind: 'user', name: 'bob', role: 'approver' } as const;
    const stream = await service.grant(
      {
        agent: 'claude',
        scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls']], maxSessions: 2 },
        ttlSeconds: 60,
        reason: 'r',
      },
      alice,
    );
    const rest = await service.grant({ agent: 'claude', scope: { kind: 'rest', verb: 'delete', resource: 'namespaces', namespace: '', name: 'demo' }, ttlSeconds: 60, reason: 'r' }, alice);
    const held = (id: number) =>
      service.requestOrJoin({
        agent: { id: agent.id, name: agent.name },
        scope: { kind: 'stream', namespace: 'demo', pod: `p-${id}`, container: 'app', verbs: ['attach'] },
        request: { method: 'GET', path: `/api/v1/namespaces/demo/pods/p-${id}/attach` },
        holdSeconds: 60,
      });
    const pending = (await held(1)).approval;
    const approved = await service.approve((await held(2)).approval.id, bob, { ttlSeconds: 30 });
    const denied = await service.deny((await held(3)).approval.id, bob, 'no');
    const revoked = await service.revoke(rest.id, bob, 'done');
    for (const a of [stream, rest, pending, approved, denied, revoked]) {
      expect(check({ $ref: '#/components/schemas/Approval' }, JSON.parse(JSON.stringify(a))), a.state).toEqual([]);
    }
    expect(check({ $ref: '#/components/schemas/ApprovalList' }, { items: await service.list() })).toEqual([]);
  });
});

describe('GET /v1/openapi.json', () => {
  it('is served without authentication', async () => {
    const control = endpoint();
    await control.listen();
    try {
      const res = await fetch(`${control.url}${OPENAPI_PATH}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual(openApiDocument());
    } finally {
      await control.close();
    }
  });
});

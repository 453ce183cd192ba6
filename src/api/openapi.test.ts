// The generated OpenAPI document: in step with the mounted routes (both directions), well formed
// (unique operation ids, declared path parameters, references that resolve), its examples fitting
// the schemas they are documented with, and real approvals fitting the Approval schema.
// (openapi-examples.test.ts sends every documented example to a real endpoint.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteApprovalService } from '../approvals/service.js';
import type { ApprovalService } from '../model/approval.js';
import { ApprovalSchema } from '../model/approval-schema.js';
import { APPROVAL_STATES } from '../model/vocabulary.js';
import { silentLogger } from '../observability/log.js';
import { openStore } from '../store/index.js';
import { OPENAPI_PATH, ROUTES } from './contract.js';
import { PENDING_EXEC } from './examples.js';
import { ControlEndpoint, type ControlDeps } from './control-endpoint.js';
import { openApiDocument } from './openapi.js';
import { isJsonResponse, type RouteSpec } from './route-spec.js';
import { ApprovalListSchema, ErrorSchema } from './schemas.js';
import { WEB_UI_PATHS } from './web-ui.js';

type Obj = Record<string, unknown>;
const doc = openApiDocument() as Obj;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** A ControlEndpoint over fakes: every route it mounts, none of them called. */
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
  const deps: ControlDeps = {
    agents: unused as ControlDeps['agents'],
    users: unused as ControlDeps['users'],
    audit: unused as ControlDeps['audit'],
    policyVersions: unused as ControlDeps['policyVersions'],
    currentPolicy: () => ({ hash: '0'.repeat(64), origin: 'builtin:default' }),
    metrics: { contentType: 'text/plain', render: async () => '' },
    agentKubeconfig: () => '',
    log: silentLogger(),
    approvals: unused as ApprovalService,
    sessions: unused as ControlDeps['sessions'],
    recordingsDir: '',
    signingKey: unused as never,
    verifyAudit: (unused as { verifyAudit: ControlDeps['verifyAudit'] }).verifyAudit,
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

function documentedOperations(): string[] {
  return Object.entries(doc['paths'] as Obj).flatMap(([path, item]) =>
    Object.keys(item as Obj)
      .filter((k) => METHODS.includes(k))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

describe('the OpenAPI document and the mounted routes', () => {
  // The web UI's static files are pages, not API operations.
  const routed = [
    ...new Set(
      endpoint()
        .routes.filter((r) => !(WEB_UI_PATHS as readonly string[]).includes(r.pattern))
        .map((r) => `${r.method} ${r.pattern.replace(/:([^/]+)/g, '{$1}')}`),
    ),
  ].sort();
  const documented = documentedOperations().sort();

  it('documents every mounted route', () => {
    expect(routed.filter((r) => !documented.includes(r)), 'routes missing from the route table').toEqual([]);
  });

  it('mounts every documented operation', () => {
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

  it('has only references that resolve, and no zod-only keys', () => {
    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === 'object' && v !== null) {
        for (const [k, x] of Object.entries(v)) {
          expect(k, 'a JSON Schema draft key OpenAPI 3.0 does not have').not.toMatch(/^\$(id|schema|defs)$/);
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
      }
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(() => resolve({ $ref: r }), r).not.toThrow();
  });

  it('describes approvals with the fields the issue requires, in camelCase, states from the vocabulary', () => {
    const approval = resolve({ $ref: '#/components/schemas/Approval' }) as Obj;
    for (const f of ['id', 'state', 'agent', 'scope', 'requestedBy', 'decidedBy', 'reason', 'createdAt', 'decidedAt', 'expiresAt']) {
      expect(approval['required'], f).toContain(f);
    }
    expect(((approval['properties'] as Obj)['state'] as Obj)['enum']).toEqual([...APPROVAL_STATES]);
    const getApproval = (((doc['paths'] as Obj)['/v1/approvals/{id}'] as Obj)['get'] as Obj)['responses'] as Obj;
    const shown = ((getApproval['200'] as Obj)['content'] as Record<string, Obj>)['application/json']!['examples'] as Obj;
    expect(Object.keys(shown).length, 'an approval example in each state').toBeGreaterThanOrEqual(4);
    expect((resolve({ $ref: '#/components/schemas/GrantRequest' }) as Obj)['oneOf']).toEqual([
      { $ref: '#/components/schemas/StreamGrant' },
      { $ref: '#/components/schemas/RestGrant' },
    ]);
  });

  it('has examples for every operation with a body, each fitting the schema it is documented with', () => {
    for (const spec of ROUTES as readonly RouteSpec[]) {
      const examples = Object.entries(spec.examples ?? {});
      if (spec.body) expect(examples.some(([, e]) => e.body !== undefined), `${spec.operationId} has a body example`).toBe(true);
      for (const [name, e] of examples) {
        if (e.response === undefined) continue;
        const ok = isJsonResponse(spec.response) && e.status === spec.response.status;
        const schema = ok && isJsonResponse(spec.response) ? spec.response.schema : ErrorSchema;
        expect(schema.safeParse(e.response).error?.issues ?? [], `${spec.operationId}.${name}`).toEqual([]);
      }
    }
  });

  it('the Approval schema refuses what it does not allow', () => {
    const good = ApprovalSchema.parse(PENDING_EXEC);
    const refused = (v: unknown): boolean => !ApprovalSchema.safeParse(v).success;
    expect(refused({ ...good, state: 'limbo' })).toBe(true);
    expect(refused({ ...good, extra: 1 })).toBe(true);
    expect(refused({ ...good, createdAt: 'yesterday' })).toBe(true);
    expect(refused({ ...good, scope: { ...good.scope, verb: 'get' } })).toBe(true);
    const { decidedBy: _, ...missing } = good;
    expect(refused(missing)).toBe(true);
  });
});

describe('real approvals fit the Approval schema', () => {
  let dir: string;
  let store: ReturnType<typeof openStore>;
  let service: SqliteApprovalService;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kb-openapi-'));
    store = openStore(join(dir, 'data'));
    service = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
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
      expect(ApprovalSchema.safeParse(JSON.parse(JSON.stringify(a))).error?.issues ?? [], a.state).toEqual([]);
    }
    expect(ApprovalListSchema.safeParse(JSON.parse(JSON.stringify({ items: await service.list() }))).success).toBe(true);
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

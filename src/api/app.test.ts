// The control app's plumbing over fakes: errors answered from the one error table (a 500 stays a
// 500, logged, its text kept from the client), 404 and 405, and the body and query rules of the
// validate middleware.
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BastionError } from '../errors/index.js';
import type { ApprovalService } from '../model/approval.js';
import { createLogger } from '../observability/log.js';
import type { User } from '../store/types.js';
import { ControlEndpoint, type ControlDeps } from './control-endpoint.js';
import { MAX_BODY_BYTES } from './validate.js';

const ADMIN: User = { id: 'u1', name: 'adam', role: 'admin', createdAt: '2025-06-01T08:00:00.000Z', disabledAt: null };
const logged: string[] = [];
let control: ControlEndpoint;

function unused<T>(): T {
  return new Proxy({}, { get: (_, prop) => (prop === 'then' ? undefined : () => Promise.reject(new Error(`fake: ${String(prop)} called`))) }) as T;
}

beforeAll(async () => {
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => logged.push(d.toString()));
  const deps: ControlDeps = {
    users: { ...unused<ControlDeps['users']>(), authenticateUser: async (token: string) => (token === 'kbu_admin' ? ADMIN : undefined) },
    agents: {
      ...unused<ControlDeps['agents']>(),
      listAgents: async () => {
        throw new BastionError('CONFIG_INVALID', 'the secret detail of a broken config');
      },
      getAgentByName: async () => {
        throw new Error('a plain failure with details');
      },
    },
    audit: unused(),
    policyVersions: unused(),
    approvals: unused<ApprovalService>(),
    sessions: unused(),
    recordingsDir: '',
    signingKey: unused(),
    verifyAudit: async () => {
      throw new Error('fake: verifyAudit called');
    },
    currentPolicy: () => ({ hash: '0'.repeat(64), origin: 'builtin:default' }),
    metrics: { contentType: 'text/plain; version=0.0.4; charset=utf-8', render: async () => 'kube_bastion_up 1\n' },
    agentKubeconfig: () => '',
    log: createLogger('error', sink),
  };
  control = new ControlEndpoint(deps, { host: '127.0.0.1', port: 0 });
  await control.listen();
});

afterAll(async () => {
  await control?.close();
});

async function call(method: string, path: string, init: { body?: string; type?: string; token?: string | null } = {}) {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers['Authorization'] = `Bearer ${init.token ?? 'kbu_admin'}`;
  if (init.type !== undefined) headers['Content-Type'] = init.type;
  const res = await fetch(`${control.url}${path}`, { method, headers, ...(init.body !== undefined ? { body: init.body } : {}) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type'), json: /^application\/json/.test(res.headers.get('content-type') ?? '') ? (JSON.parse(text) as { error: { code: string; message: string; field?: string } }) : undefined, text };
}

describe('errors from the table', () => {
  it('a BastionError whose code is a 500 is answered 500, with its text only in the log', async () => {
    const r = await call('GET', '/v1/agents');
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: { code: 'CONFIG_INVALID', message: 'internal error' } });
    expect(r.text).not.toContain('secret detail');
    expect(logged.join('')).toContain('the secret detail of a broken config');
  });

  it('anything else thrown is 500 INTERNAL', async () => {
    const r = await call('GET', '/v1/agents/claude');
    expect(r.status).toBe(500);
    expect(r.json).toEqual({ error: { code: 'INTERNAL', message: 'internal error' } });
    expect(logged.join('')).toContain('a plain failure with details');
  });

  it('404 for unknown paths (also with another case, or a malformed escape), 405 for a known path with another method', async () => {
    expect((await call('GET', '/v1/nothing')).json?.error.code).toBe('NOT_FOUND');
    expect((await call('GET', '/V1/AGENTS')).status).toBe(404);
    expect((await call('GET', '/v1/agents/%E0%A4%A')).status).toBe(404);
    const r = await call('DELETE', '/v1/agents');
    expect(r.status).toBe(405);
    expect(r.json?.error.code).toBe('METHOD_NOT_ALLOWED');
    expect((await call('PUT', '/healthz')).status).toBe(405);
  });

  it('serves /metrics from whatever renders it, with its content type', async () => {
    const r = await call('GET', '/metrics', { token: null });
    expect(r).toMatchObject({ status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', text: 'kube_bastion_up 1\n' });
  });
});

describe('bodies and queries', () => {
  it('415 for a body that is not JSON, 413 over 64 KiB, INVALID_JSON, INVALID_BODY', async () => {
    expect((await call('POST', '/v1/agents', { body: 'name=x', type: 'application/x-www-form-urlencoded' })).json?.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect((await call('POST', '/v1/agents', { body: '{"name":"x"}' })).status).toBe(415);
    const big = await call('POST', '/v1/agents', { body: JSON.stringify({ name: 'x'.repeat(MAX_BODY_BYTES) }), type: 'application/json' });
    expect(big.status).toBe(413);
    expect(big.json?.error.code).toBe('BODY_TOO_LARGE');
    expect((await call('POST', '/v1/agents', { body: '{"name":', type: 'application/json' })).json?.error.code).toBe('INVALID_JSON');
    expect((await call('POST', '/v1/agents', { body: '', type: 'application/json' })).json?.error.code).toBe('INVALID_JSON');
    expect((await call('POST', '/v1/agents', { body: '"x"', type: 'application/json' })).json?.error.code).toBe('INVALID_BODY');
  });

  it('names the field: INVALID_FIELD, UNKNOWN_FIELD, INVALID_QUERY (a parameter given twice too)', async () => {
    expect((await call('POST', '/v1/agents', { body: '{"name":7}', type: 'application/json' })).json?.error).toMatchObject({ code: 'INVALID_FIELD', field: 'name' });
    expect((await call('POST', '/v1/agents', { body: '{"name":"x","colour":1}', type: 'application/json' })).json?.error).toMatchObject({ code: 'UNKNOWN_FIELD', field: 'colour' });
    expect((await call('GET', '/v1/audit?limit=many')).json?.error).toMatchObject({ code: 'INVALID_QUERY', field: 'limit' });
    expect((await call('GET', '/v1/approvals?state=pending&state=approved')).json?.error).toMatchObject({ code: 'INVALID_QUERY', field: 'state' });
  });

  it('checks the token before the body', async () => {
    expect((await call('POST', '/v1/agents', { body: 'not json', type: 'application/json', token: null })).status).toBe(401);
  });
});

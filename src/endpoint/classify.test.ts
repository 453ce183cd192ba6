// One classification for every request on the Kubernetes endpoint: authenticate, canonicalise,
// ask the policy. Driven with a request-like object, a fake authenticator and a fake policy.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { KubeRequest, PolicyDecision, Principal } from '../model/request.js';
import { bearerToken, classify } from './classify.js';
import { subject } from './refusals.js';
import type { AgentAuthenticator, PolicyDecider } from './ports.js';

const HASH = 'c0ffee'.repeat(10) + 'abcd';
const BOT: Principal = { kind: 'agent', id: 'agt_123', name: 'bot-a' };

function request(method: string, url: string, headers: IncomingHttpHeaders = {}): IncomingMessage {
  return { method, url, headers } as unknown as IncomingMessage;
}
const withToken = (token: string, extra: IncomingHttpHeaders = {}): IncomingHttpHeaders => ({ authorization: `Bearer ${token}`, ...extra });

function fakeAuth(tokens: Record<string, Principal> = { 'good-token': BOT }): AgentAuthenticator & { seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    authenticateAgent: async (token) => {
      seen.push(token);
      return tokens[token];
    },
  };
}

function fakePolicy(decision: Omit<PolicyDecision, 'policyHash'> & { policyHash?: string }): PolicyDecider & {
  calls: { req: KubeRequest; ctx: { principal: Principal; impersonation: boolean } }[];
} {
  const calls: { req: KubeRequest; ctx: { principal: Principal; impersonation: boolean } }[] = [];
  return {
    calls,
    decide: (req, ctx) => {
      calls.push({ req, ctx });
      return { policyHash: HASH, ...decision };
    },
  };
}

const allow = (): ReturnType<typeof fakePolicy> => fakePolicy({ action: 'allow', rule: 'read-only', reason: '' });

describe('bearerToken', () => {
  it.each([
    [undefined, undefined],
    ['Bearer abc.def', 'abc.def'],
    ['bearer abc', 'abc'],
    ['Bearer   abc  ', 'abc'],
    ['Basic YWxhZGRpbjpvcGVu', undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
  ])('%j -> %j', (header, token) => {
    expect(bearerToken(request('GET', '/api', header === undefined ? {} : { authorization: header }))).toBe(token);
  });
});

describe('classify: authentication', () => {
  it('no token: 401 refusal naming the missing bearer token; nobody else is asked', async () => {
    const auth = fakeAuth();
    const policy = allow();
    const c = await classify(request('GET', '/api/v1/namespaces/demo/pods'), auth, policy);
    expect(c).toEqual({
      outcome: 'refuse',
      status: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Unauthorized: kube-bastion needs a bearer token (use the kubeconfig the bastion issued)',
        reason: 'Unauthorized',
        code: 401,
      },
      audit: { decision: 'deny', rule: 'authentication', policyHash: null },
      principal: null,
      request: null,
      failure: 'unauthenticated',
    });
    expect(auth.seen).toEqual([]);
    expect(policy.calls).toEqual([]);
  });

  it('a non-bearer Authorization header counts as no token', async () => {
    const auth = fakeAuth();
    const c = await classify(request('GET', '/api', { authorization: 'Basic Ym90OnB3' }), auth, allow());
    expect(c.outcome === 'refuse' && c.status.message).toMatch(/needs a bearer token/);
    expect(auth.seen).toEqual([]);
  });

  it('unknown token: 401 refusal, the token was looked up, the policy never asked', async () => {
    const auth = fakeAuth();
    const policy = allow();
    const c = await classify(request('GET', '/api/v1/namespaces/demo/pods', withToken('stolen')), auth, policy);
    expect(c.outcome).toBe('refuse');
    if (c.outcome !== 'refuse') return;
    expect(c.status).toMatchObject({ code: 401, reason: 'Unauthorized', message: 'Unauthorized: unknown or revoked agent token' });
    expect(c.audit).toEqual({ decision: 'deny', rule: 'authentication', policyHash: null });
    expect(c.principal).toBeNull();
    expect(auth.seen).toEqual(['stolen']);
    expect(policy.calls).toEqual([]);
  });

  it('unauthenticated requests are refused before the path is even parsed', async () => {
    const c = await classify(request('GET', '/api/v1/namespaces/demo/pods/../secrets'), fakeAuth(), allow());
    expect(c.outcome === 'refuse' && c.status.code).toBe(401);
  });
});

describe('classify: unclassifiable requests', () => {
  it.each([
    ['GET', '/api/v1/namespaces/demo/pods/../secrets', 'dot-segment'],
    ['GET', '/api/v1/namespaces/demo/pods%2Fweb-0', 'encoded-slash'],
    ['GET', '/api/v1//namespaces', 'double-slash'],
    ['TRACE', '/api/v1/pods', 'method-not-allowed'],
  ])('%s %s -> 400 with rule unclassifiable:%s, the policy never asked', async (method, url, reason) => {
    const policy = allow();
    const c = await classify(request(method, url, withToken('good-token')), fakeAuth(), policy);
    expect(c.outcome).toBe('refuse');
    if (c.outcome !== 'refuse') return;
    expect(c.status).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest', status: 'Failure' });
    expect(c.status.message).toMatch(new RegExp(`^kube-bastion refused a request it cannot classify \\(${reason}\\): `));
    expect(c.audit).toEqual({ decision: 'deny', rule: `unclassifiable:${reason}`, policyHash: null });
    expect(c.failure).toBe('malformed');
    expect(c.principal).toEqual(BOT);
    expect(c.request).toBeNull();
    expect(policy.calls).toEqual([]);
  });
});

describe('classify: the policy decides', () => {
  it('deny: 403 Status naming the rule, the agent, the action and the policy hash; causes carry rule and full hash', async () => {
    const policy = fakePolicy({ action: 'deny', rule: 'no-secrets', reason: 'secrets are off limits' });
    const c = await classify(request('GET', '/api/v1/namespaces/demo/secrets/db', withToken('good-token')), fakeAuth(), policy);
    expect(c.outcome).toBe('refuse');
    if (c.outcome !== 'refuse') return;
    expect(c.status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `secrets "db" is forbidden: kube-bastion rule "no-secrets" denies agent "bot-a" to get secrets in namespace "demo": secrets are off limits [policy sha256:${HASH.slice(0, 12)}]`,
      reason: 'Forbidden',
      details: {
        name: 'db',
        kind: 'secrets',
        group: '',
        causes: [
          { reason: 'KubeBastionDenied', message: 'no-secrets' },
          { reason: 'KubeBastionPolicy', message: HASH },
        ],
      },
      code: 403,
    });
    expect(c.audit).toEqual({ decision: 'deny', rule: 'no-secrets', policyHash: HASH });
    expect(c.principal).toEqual(BOT);
    expect(c.request).toMatchObject({ kind: 'resource', verb: 'get', resource: 'secrets', namespace: 'demo', name: 'db' });
  });

  it('deny of an exec names the pod and namespace; no reason, no colon', async () => {
    const policy = fakePolicy({ action: 'deny', rule: 'default', reason: '' });
    const url = '/api/v1/namespaces/prod/pods/web-0/exec?command=sh&stdin=true&stdout=true';
    const c = await classify(request('POST', url, withToken('good-token')), fakeAuth(), policy);
    expect(c.outcome === 'refuse' && c.status.message).toBe(
      `pods "web-0" is forbidden: kube-bastion rule "default" denies agent "bot-a" to exec into pod "web-0" in namespace "prod" [policy sha256:${HASH.slice(0, 12)}]`,
    );
  });

  it('deny of a non-resource path names the path', async () => {
    const policy = fakePolicy({ action: 'deny', rule: 'no-metrics', reason: '' });
    const c = await classify(request('GET', '/metrics', withToken('good-token')), fakeAuth(), policy);
    expect(c.outcome === 'refuse' && c.status.message).toMatch(/^the path "\/metrics" is forbidden: kube-bastion rule "no-metrics" denies agent "bot-a" to get \/metrics /);
    expect(c.outcome === 'refuse' && c.status.details).toEqual({
      causes: [
        { reason: 'KubeBastionDenied', message: 'no-metrics' },
        { reason: 'KubeBastionPolicy', message: HASH },
      ],
    });
  });

  it('allow -> forward with the principal, the parsed request and the decision', async () => {
    const policy = allow();
    const c = await classify(request('GET', '/apis/apps/v1/namespaces/demo/deployments?limit=5', withToken('good-token')), fakeAuth(), policy);
    expect(c.outcome).toBe('forward');
    if (c.outcome !== 'forward') return;
    expect(c.principal).toEqual(BOT);
    expect(c.decision).toEqual({ action: 'allow', rule: 'read-only', reason: '', policyHash: HASH });
    expect(c.request).toMatchObject({ kind: 'resource', verb: 'list', apiGroup: 'apps', resource: 'deployments', namespace: 'demo' });
    expect(policy.calls).toHaveLength(1);
    expect(policy.calls[0]!.req).toBe(c.request);
  });

  it('approval -> approval, with an autoApprove passed through', async () => {
    const policy = fakePolicy({ action: 'approval', rule: 'exec-needs-approval', reason: '', autoApprove: { ttlSeconds: 60 } });
    const c = await classify(request('GET', '/api/v1/namespaces/demo/pods/web-0/exec?command=ls&stdout=true', withToken('good-token')), fakeAuth(), policy);
    expect(c.outcome).toBe('approval');
    if (c.outcome !== 'approval') return;
    expect(c.decision).toMatchObject({ action: 'approval', rule: 'exec-needs-approval', autoApprove: { ttlSeconds: 60 } });
    expect(c.request).toMatchObject({ kind: 'resource', stream: 'exec', name: 'web-0', namespace: 'demo' });
  });

  it('the WebSocket GET and the SPDY POST of one exec reach the policy as the same operation', async () => {
    const policy = allow();
    const url = '/api/v1/namespaces/demo/pods/web-0/exec?command=ls&stdout=true';
    await classify(request('GET', url, withToken('good-token')), fakeAuth(), policy);
    await classify(request('POST', url, withToken('good-token')), fakeAuth(), policy);
    const shape = (r: KubeRequest) => (r.kind === 'resource' ? [r.verb, r.resource, r.subresource, r.stream, r.namespace, r.name] : r);
    expect(policy.calls.map((c) => shape(c.req))).toEqual([
      ['create', 'pods', 'exec', 'exec', 'demo', 'web-0'],
      ['create', 'pods', 'exec', 'exec', 'demo', 'web-0'],
    ]);
  });
});

describe('classify: what the policy context carries', () => {
  it('the authenticated principal, and impersonation=false without Impersonate-* headers', async () => {
    const policy = allow();
    await classify(request('GET', '/api/v1/namespaces/demo/pods', withToken('good-token', { 'x-remote-user': 'admin' })), fakeAuth(), policy);
    expect(policy.calls.map((c) => c.ctx)).toEqual([{ principal: BOT, impersonation: false }]);
  });

  it.each(['impersonate-user', 'impersonate-group', 'impersonate-extra-scopes', 'impersonate-uid'])('%s sets impersonation=true', async (name) => {
    const policy = allow();
    await classify(request('GET', '/api/v1/namespaces/demo/pods', withToken('good-token', { [name]: 'system:admin' })), fakeAuth(), policy);
    expect(policy.calls.map((c) => c.ctx)).toEqual([{ principal: BOT, impersonation: true }]);
  });
});

describe('subject', () => {
  it('names objects, collections, subresources and paths the way kube-apiserver does', async () => {
    const policy = allow();
    const parsed = async (url: string) => {
      await classify(request('GET', url, withToken('good-token')), fakeAuth(), policy);
      return policy.calls.at(-1)!.req;
    };
    expect(subject(await parsed('/api/v1/namespaces/demo/pods/web-0'))).toBe('pods "web-0"');
    expect(subject(await parsed('/api/v1/namespaces/demo/pods'))).toBe('pods');
    expect(subject(await parsed('/api/v1/namespaces/demo/pods/web-0/log'))).toBe('pods "web-0"');
    expect(subject(await parsed('/version'))).toBe('the path "/version"');
  });
});

// Port-forward scopes: what a stream scope may say (container for exec/attach, ports with
// portforward), the scope a held port-forward asks for, what covers it, and its approver naming
// the ports as it approves.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isBastionError, type BastionError } from '../errors/index.js';
import type { Actor, Approval, ApprovalScope, Operation, StreamScope } from '../model/approval.js';
import { GrantBodySchema, grantInput } from '../model/approval-schema.js';
import { validateScope } from '../model/approval-input.js';
import { parseInput } from '../model/validation.js';
import { canonicalScope, portAllowed, scopeCovers, scopeJson } from '../model/scope.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { tempDataDir } from '../store/test-support.js';
import { portForwardOperation, scopeFor } from './operation.js';
import { SqliteApprovalService } from './service.js';
import type { ResourceRequest } from '../model/request.js';

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
const ann: Actor = { kind: 'user', name: 'ann', role: 'approver' };

const forward: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080] };
const forwardOp = (over: Partial<Extract<Operation, { kind: 'stream' }>> = {}): Extract<Operation, { kind: 'stream' }> => ({
  kind: 'stream',
  verb: 'portforward',
  namespace: 'demo',
  pod: 'web-0',
  container: '',
  command: [],
  ...over,
});

function refusal(fn: () => unknown): BastionError {
  try {
    fn();
  } catch (err) {
    if (isBastionError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

async function rejection(p: Promise<unknown>): Promise<BastionError> {
  try {
    await p;
  } catch (err) {
    if (isBastionError(err)) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('stream scope rules', () => {
  it('exec and attach name their container; a portforward-only scope names none', () => {
    expect(validateScope({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] })).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] });
    for (const verbs of [['exec'], ['attach'], ['exec', 'portforward']]) {
      const err = refusal(() => validateScope({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs }));
      expect([err.code, err.field, err.message]).toEqual([
        'INVALID_FIELD',
        'scope.container',
        "scope.container is required when verbs include exec or attach (a DNS label: lower-case letters, digits and '-', at most 63 characters)",
      ]);
    }
    const err = refusal(() => validateScope({ ...forward, container: 'app' }));
    expect([err.field, err.message]).toEqual(['scope.container', 'scope.container must be left out when verbs is only portforward: a port-forward reaches the pod, not a container']);
    // exec with portforward: the container and the ports.
    expect(validateScope({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['portforward', 'exec'], ports: [9090, 8080] })).toEqual({
      kind: 'stream',
      namespace: 'demo',
      pod: 'web-0',
      container: 'app',
      verbs: ['exec', 'portforward'],
      ports: [8080, 9090],
    });
  });

  it('ports come only with portforward, as distinct TCP ports', () => {
    const err = refusal(() => validateScope({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], ports: [8080] }));
    expect([err.field, err.message]).toEqual(['scope.ports', 'scope.ports names the pod ports a port-forward may reach, but verbs does not include portforward']);
    for (const [ports, field] of [
      [[], 'scope.ports'],
      [[0], 'scope.ports[0]'],
      [[65536], 'scope.ports[0]'],
      [[80, 80], 'scope.ports'],
      [['80'], 'scope.ports[0]'],
      [[8.5], 'scope.ports[0]'],
    ] as const) {
      expect(refusal(() => validateScope({ ...forward, ports })).field, JSON.stringify(ports)).toBe(field);
    }
  });

  it('a grant body that forwards names its ports (INVALID_FIELD ports); container and ports reach the scope', () => {
    const body = { agent: 'claude', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ttlSeconds: 600, reason: 'db check' };
    const err = refusal(() => parseInput(GrantBodySchema, body, 'body'));
    expect([err.code, err.field, err.message]).toEqual(['INVALID_FIELD', 'ports', 'ports is required: a port-forward grant names the pod ports it may reach']);
    expect(grantInput(parseInput(GrantBodySchema, { ...body, ports: [5432] }, 'body')).scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [5432] });
    expect(refusal(() => parseInput(GrantBodySchema, { ...body, container: 'app', verbs: ['exec'], ports: [80] }, 'body')).field).toBe('ports');
    expect(grantInput(parseInput(GrantBodySchema, { ...body, container: 'app', verbs: ['exec'] }, 'body')).scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] });
  });
});

describe('the scope a port-forward asks for, and what covers it', () => {
  const req = { namespace: 'demo', name: 'web-0' } as ResourceRequest;

  it('scopeFor: the pod, verbs [portforward], no container; ports only when the request named them (sorted, once)', () => {
    expect(scopeFor(portForwardOperation(req))).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] });
    expect(scopeFor(portForwardOperation(req, []))).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] });
    expect(scopeJson(scopeFor(portForwardOperation(req, [9090, 8080, 9090])))).toBe('{"kind":"stream","namespace":"demo","pod":"web-0","verbs":["portforward"],"ports":[8080,9090]}');
    expect(portForwardOperation(req, [8080])).toEqual({ kind: 'stream', verb: 'portforward', namespace: 'demo', pod: 'web-0', container: '', command: [], ports: [8080] });
    // What it asks for is a valid scope (a held request is stored with it).
    expect(validateScope(scopeFor(portForwardOperation(req, [8080])))).toEqual(scopeFor(portForwardOperation(req, [8080])));
  });

  it('scopeCovers: namespace, pod and verb; neither container nor ports (each connection is checked with portAllowed)', () => {
    expect(scopeCovers(forward, forwardOp())).toBe(true);
    expect(scopeCovers(forward, forwardOp({ ports: [22] }))).toBe(true);
    expect(scopeCovers(forward, forwardOp({ container: 'anything' }))).toBe(true);
    expect(scopeCovers(forward, forwardOp({ pod: 'web-1' }))).toBe(false);
    expect(scopeCovers(forward, forwardOp({ namespace: 'prod' }))).toBe(false);
    expect(scopeCovers(forward, forwardOp({ verb: 'exec', container: '', command: ['sh'] }))).toBe(false);
    // An exec scope does not cover a port-forward, and a port-forward scope no exec.
    const exec: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] };
    expect(scopeCovers(exec, forwardOp())).toBe(false);
    // Mixed: exec still needs its container.
    const both = canonicalScope({ ...exec, verbs: ['exec', 'portforward'], ports: [8080] });
    expect(scopeCovers(both, forwardOp())).toBe(true);
    expect(scopeCovers(both, { ...forwardOp({ verb: 'exec', command: ['sh'] }), container: 'app' })).toBe(true);
    expect(scopeCovers(both, { ...forwardOp({ verb: 'exec', command: ['sh'] }), container: '' })).toBe(false);
    expect([portAllowed(forward, 8080), portAllowed(forward, 8081), portAllowed({ ...forward, ports: undefined } as ApprovalScope, 8080)]).toEqual([true, false, false]);
  });
});

describe('approving a port-forward names its ports', () => {
  let tmp: ReturnType<typeof tempDataDir>;
  let store: SqliteStore;
  let svc: SqliteApprovalService;
  let bot: { id: string; name: string };
  const clock = (): Date => new Date(T0);
  const request = { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/portforward' };
  const held = async (scope: ApprovalScope): Promise<Approval> => (await svc.requestOrJoin({ agent: bot, scope, request, holdSeconds: 120 })).approval;

  beforeEach(async () => {
    tmp = tempDataDir();
    store = openStore(tmp.dir, { clock });
    const a = (await store.agents.createAgent('bot-a')).agent;
    bot = { id: a.id, name: a.name };
    svc = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents, clock });
  });
  afterEach(async () => {
    svc.close();
    await store.close();
    tmp.cleanup();
  });

  it('a request without ports is approved only with ports; what was asked stays in the audit row', async () => {
    const p = await held(scopeFor(forwardOp()));
    expect(p.scope).toEqual({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] });
    const err = await rejection(svc.approve(p.id, ann, { reason: 'ok' }));
    expect([err.code, err.field, err.message]).toEqual(['INVALID_FIELD', 'ports', 'ports is required: name the pod ports this port-forward may reach (--ports)']);
    expect((await svc.get(p.id))!.state).toBe('pending');
    expect((await rejection(svc.approve(p.id, ann, { ports: [] }))).field).toBe('ports');
    expect((await rejection(svc.approve(p.id, ann, { ports: [70000] }))).field).toBe('ports[0]');

    const a = await svc.approve(p.id, ann, { ports: [7000, 8080] });
    expect(a).toMatchObject({ state: 'approved', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [7000, 8080] } });
    expect(portAllowed(a.scope, 8080) && portAllowed(a.scope, 7000) && !portAllowed(a.scope, 22)).toBe(true);
    expect((await svc.findUsable(bot.id, forwardOp()))?.id).toBe(a.id);
    const row = (await store.audit.query({ approvalId: a.id, event: 'approval.approved' }))[0]!;
    expect(JSON.parse(row.details!)).toMatchObject({ scope: a.scope, requestedScope: p.scope });
  });

  it("a request that named ports is approved as asked, or with the approver's ports instead", async () => {
    const asked = await held(scopeFor(forwardOp({ ports: [8080] })));
    const same = await svc.approve(asked.id, ann);
    expect(same.scope).toEqual({ ...forward, ports: [8080] });
    const row = (await store.audit.query({ approvalId: same.id, event: 'approval.approved' }))[0]!;
    expect(JSON.parse(row.details!)).not.toHaveProperty('requestedScope');

    const other = await held(scopeFor(forwardOp({ pod: 'web-1', ports: [8080] })));
    expect((await svc.approve(other.id, ann, { ports: [9090] })).scope).toMatchObject({ pod: 'web-1', ports: [9090] });
  });

  it('ports on an exec or REST approval are refused, as uses and scope are on a stream approval', async () => {
    const exec = await held({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls']] });
    const e1 = await rejection(svc.approve(exec.id, ann, { ports: [8080] }));
    expect([e1.code, e1.field, e1.message]).toEqual(['INVALID_FIELD', 'ports', 'ports names the pod ports a port-forward may reach; this approval is for exec']);
    const rest = await held({ kind: 'rest', verb: 'get', resource: 'secrets', namespace: 'demo', name: 'x' });
    expect((await rejection(svc.approve(rest.id, ann, { ports: [8080] }))).field).toBe('ports');
    const pf = await held(scopeFor(forwardOp()));
    expect((await rejection(svc.approve(pf.id, ann, { ports: [8080], uses: 2 }))).field).toBe('uses');
    for (const a of [exec, rest, pf]) expect((await svc.get(a.id))!.state).toBe('pending');
  });

  it('a direct grant that forwards names its ports', async () => {
    const err = await rejection(svc.grant({ agent: 'bot-a', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] }, ttlSeconds: 60, reason: 'x' }, ann));
    expect([err.code, err.field, err.message]).toEqual(['INVALID_FIELD', 'scope.ports', 'scope.ports is required: a port-forward grant names the pod ports it may reach']);
    expect((await svc.grant({ agent: 'bot-a', scope: forward, ttlSeconds: 60, reason: 'x' }, ann)).scope).toEqual(forward);
  });
});

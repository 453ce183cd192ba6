// `kube-bastion approvals ...` against a real control endpoint (real store, real approval service).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlEndpoint } from '../api/control-endpoint.js';
import { startTestControl } from '../api/test-support.js';
import { SqliteApprovalService } from '../approvals/service.js';
import type { Approval, StreamScope } from '../model/approval.js';
import { BastionError } from '../errors/index.js';
import { openStore, type SqliteStore } from '../store/index.js';
import { formatScope, parseDuration, runApprovals, type ApprovalsIo } from './approvals.js';
import { describeHeldBody } from '../model/held-body.js';
import { createHash } from 'node:crypto';

let dir: string;
let store: SqliteStore;
let approvals: SqliteApprovalService;
let control: ControlEndpoint;
let agent: { id: string; name: string };
let alice: string;
let bob: string;
let rita: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kb-approvals-cli-'));
  store = openStore(join(dir, 'data'));
  approvals = new SqliteApprovalService({ approvals: store.approvals, agents: store.agents });
  control = await startTestControl({ store, approvals });
  alice = (await store.users.createUser('alice', 'approver')).token;
  bob = (await store.users.createUser('bob', 'approver')).token;
  rita = (await store.users.createUser('rita', 'reviewer')).token;
  const created = await store.agents.createAgent('claude');
  agent = { id: created.agent.id, name: created.agent.name };
});

afterAll(async () => {
  await control?.close();
  approvals?.close();
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the command with KUBE_BASTION_URL/TOKEN pointing at the test server (alice unless told). */
async function run(args: string[], opts: { token?: string; env?: Record<string, string | undefined>; signal?: AbortSignal; onOut?: (s: string) => void } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Partial<ApprovalsIo> = {
    stdout: (t) => {
      stdout += t;
      opts.onOut?.(stdout);
    },
    stderr: (t) => (stderr += t),
    env: opts.env ?? { KUBE_BASTION_URL: control.url, KUBE_BASTION_TOKEN: opts.token ?? alice },
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  const code = await runApprovals(args, io);
  return { code, stdout, stderr };
}

async function usageError(args: string[], env?: Record<string, string | undefined>): Promise<string> {
  const err = await run(args, env ? { env } : {}).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, args.join(' ')).toBeInstanceOf(BastionError);
  expect((err as BastionError).code).toBe('USAGE');
  return (err as BastionError).message;
}

let podCounter = 0;
async function pending(): Promise<Approval> {
  const pod = `held-${++podCounter}`;
  const { approval } = await approvals.requestOrJoin({
    agent,
    scope: { kind: 'stream', namespace: 'demo', pod, container: 'app', verbs: ['exec'] },
    request: { method: 'POST', path: `/api/v1/namespaces/demo/pods/${pod}/exec`, command: ['ls'] },
    holdSeconds: 300,
  });
  return approval;
}

const STREAM = ['--agent', 'claude', '--namespace', 'demo', '--pod', 'web-0', '--container', 'app', '--verbs', 'exec,attach', '--ttl', '10m', '--reason', 'INC-7'];

describe('parseDuration and formatScope', () => {
  it('reads 90s, 10m, 2h, 1h30m, 1d and bare seconds', () => {
    expect(parseDuration('90s', '--ttl')).toBe(90);
    expect(parseDuration('10m', '--ttl')).toBe(600);
    expect(parseDuration('2h', '--ttl')).toBe(7200);
    expect(parseDuration('1h30m', '--ttl')).toBe(5400);
    expect(parseDuration('1d', '--ttl')).toBe(86400);
    expect(parseDuration('45', '--ttl')).toBe(45);
    for (const bad of ['', '10x', 'm', '0s', '-5m', '1.5h', '10m5h']) expect(() => parseDuration(bad, '--ttl'), bad).toThrow(/--ttl/);
  });

  it('shows scopes kubectl-style', () => {
    expect(formatScope({ kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'], commands: [['ls']], maxSessions: 2 })).toBe(
      'exec web-0 -c app -n demo max-sessions=2 -- ls',
    );
    expect(formatScope({ kind: 'rest', verb: 'delete', resource: 'namespaces', namespace: '', name: 'demo' })).toBe('delete namespaces demo');
    expect(formatScope({ kind: 'rest', verb: 'list', resource: 'pods', namespace: 'demo', name: '' })).toBe('list pods -n demo');
    // Cluster-scoped: no namespace at all (no `-n ''`, no `/name`).
    expect(formatScope({ kind: 'rest', verb: 'create', resource: 'clusterrolebindings.rbac.authorization.k8s.io', namespace: '', name: '' })).toBe(
      'create clusterrolebindings.rbac.authorization.k8s.io',
    );
    expect(formatScope({ kind: 'rest', verb: 'get', resource: 'nodes', namespace: '', name: 'node-1' })).toBe('get nodes node-1');
  });

  it('shows the command of an exec scope rather than a count: quoted as a shell would, cut when long, the rest counted', () => {
    const scope: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] };
    expect(formatScope({ ...scope, commands: [['sh', '-c', "echo 'hi there'"]] })).toBe(`exec web-0 -c app -n demo -- sh -c 'echo '\\''hi there'\\'''`);
    expect(formatScope({ ...scope, commands: [['ls', '-l', '/data'], ['cat', '/data/config.yaml'], ['df', '-h']] })).toBe('exec web-0 -c app -n demo -- ls -l /data (+2 more)');
    const long = ['tar', 'cf', '-', '-C', '/var/lib/app/data/with/a/very/long/path', 'file-one', 'file-two'];
    expect(formatScope({ ...scope, commands: [long] })).toBe('exec web-0 -c app -n demo -- tar cf - -C /var/lib/app/data/with/a/very/long/…');
    expect(formatScope({ ...scope, verbs: ['attach', 'exec'] })).toBe('attach,exec web-0 -c app -n demo');
  });

  it('shows the ports of a port-forward scope (none while its approver has not named them), and no container', () => {
    const forward: StreamScope = { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'] };
    expect(formatScope(forward)).toBe('portforward web-0 -n demo ports=none');
    expect(formatScope({ ...forward, ports: [7000, 8080] })).toBe('portforward web-0 -n demo ports=7000,8080');
    expect(formatScope({ ...forward, container: 'app', verbs: ['exec', 'portforward'], ports: [8080], maxSessions: 1 })).toBe('exec,portforward web-0 -c app -n demo ports=8080 max-sessions=1');
  });
});

describe('kube-bastion approvals and port-forwards', () => {
  it('grant --verbs portforward --ports (no --container); without --ports the API refusal names --ports', async () => {
    const args = ['grant', '--agent', 'claude', '--namespace', 'demo', '--pod', 'web-0', '--verbs', 'portforward', '--ttl', '10m', '--reason', 'INC-8'];
    const refused = await run(args);
    expect(refused).toEqual({ code: 1, stdout: '', stderr: 'kube-bastion approvals: ports is required: a port-forward grant names the pod ports it may reach (--ports)\n' });
    const r = await run([...args, '--ports', '8080, 7000']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^approval apr_\S+ granted: portforward web-0 -n demo ports=7000,8080 for agent claude, expires /);
    expect(await usageError([...args, '--ports', '8080;7000'])).toMatch(/^--ports "8080;7000": give pod ports separated by commas/);
    // exec still needs its container.
    expect(await usageError(['grant', '--agent', 'claude', '--namespace', 'demo', '--pod', 'web-0', '--verbs', 'exec,portforward', '--ports', '80', '--ttl', '1m', '--reason', 'x'])).toMatch(
      /^--container CONTAINER is required/,
    );
  });

  it('approve ID --ports names the ports of a held port-forward; get shows them; without them the refusal names --ports', async () => {
    const pod = `forward-${++podCounter}`;
    const { approval: held } = await approvals.requestOrJoin({
      agent,
      scope: { kind: 'stream', namespace: 'demo', pod, verbs: ['portforward'] },
      request: { method: 'POST', path: `/api/v1/namespaces/demo/pods/${pod}/portforward` },
      holdSeconds: 300,
    });
    expect((await run(['get', held.id])).stdout).toMatch(/\nPorts:\s+none named yet \(approve with --ports\)\n/);
    expect(await run(['approve', held.id])).toEqual({ code: 1, stdout: '', stderr: 'kube-bastion approvals: ports is required: name the pod ports this port-forward may reach (--ports)\n' });
    const r = await run(['approve', held.id, '--ports', '8080,5432', '--reason', 'db and app']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`approval ${held.id} approved: portforward ${pod} -n demo ports=5432,8080 for agent claude`);
    expect((await run(['get', held.id])).stdout).toMatch(/\nPorts:\s+5432, 8080\n/);
    // On an exec approval, --ports is the API's refusal.
    const exec = await pending();
    expect((await run(['approve', exec.id, '--ports', '80'])).stderr).toBe('kube-bastion approvals: ports names the pod ports a port-forward may reach; this approval is for exec (--ports)\n');
  });
});

describe('kube-bastion approvals against the control API', () => {
  it('grant (stream, with --command and --max-sessions) -o json prints the approval', async () => {
    const r = await run(['grant', ...STREAM, '--command', '["ls","-l"]', '--command', '["cat","/etc/hosts"]', '--max-sessions', '3', '-o', 'json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const a = JSON.parse(r.stdout) as Approval;
    expect(a).toMatchObject({
      state: 'approved',
      agent: 'claude',
      requestedBy: 'user:alice',
      ttlSeconds: 600,
      reason: 'INC-7',
      scope: { kind: 'stream', verbs: ['exec', 'attach'], commands: [['ls', '-l'], ['cat', '/etc/hosts']], maxSessions: 3 },
    });
  });

  it('grant (REST) prints one line naming the approval', async () => {
    const r = await run(['grant', '--agent', 'claude', '--verb', 'delete', '--resource', 'namespaces', '--name', 'demo', '--ttl', '1h', '--reason', 'tear down']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^approval apr_\w+ granted: delete namespaces demo for agent claude, expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    const id = /approval (apr_\w+)/.exec(r.stdout)![1]!;
    expect((await approvals.get(id))?.scope).toEqual({ kind: 'rest', verb: 'delete', resource: 'namespaces', namespace: '', name: 'demo' });
  });

  it('list prints a table (ID, STATE, AGENT, SCOPE, EXPIRES, RISK), filters, and -o json gives {items}', async () => {
    const held = await pending();
    const r = await run(['list']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+AGENT\s+SCOPE\s+EXPIRES\s+RISK$/);
    const line = lines.find((l) => l.startsWith(held.id));
    expect(line).toMatch(new RegExp(`^${held.id}\\s+pending\\s+claude\\s+exec ${held.scope.kind === 'stream' ? held.scope.pod : ''} -c app -n demo\\s+\\d{4}-`));

    const json = await run(['list', '--state', 'pending', '--agent', 'claude', '-o', 'json'], { token: rita });
    const items = (JSON.parse(json.stdout) as { items: Approval[] }).items;
    expect(items.map((a) => a.id)).toContain(held.id);
    expect(items.every((a) => a.state === 'pending')).toBe(true);

    const none = await run(['list', '--agent', 'nobody']);
    expect(none).toEqual({ code: 0, stdout: '', stderr: 'No approvals found.\n' });
  });

  it('get prints the details; -o json the approval', async () => {
    const held = await pending();
    const r = await run(['get', held.id], { token: rita });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ID:           ${held.id}`);
    expect(r.stdout).toMatch(/State:\s+pending/);
    expect(r.stdout).toMatch(/Requested by:\s+agent:claude/);
    expect(r.stdout).toMatch(/Request:\s+POST \/api\/v1\/namespaces\/demo\/pods\/held-\d+\/exec \["ls"\]/);
    expect(JSON.parse((await run(['get', held.id, '-o', 'json'])).stdout)).toEqual(held);
  });

  it('show (= get) names the client, the rule with its policy version, and since when nobody waits; list says so in STATE', async () => {
    const pod = `held-${++podCounter}`;
    const { approval: held } = await approvals.requestOrJoin({
      agent,
      scope: { kind: 'stream', namespace: 'demo', pod, container: 'app', verbs: ['exec'], commands: [['cat', '/etc/os-release']] },
      request: { method: 'GET', path: `/api/v1/namespaces/demo/pods/${pod}/exec`, command: ['cat', '/etc/os-release'], client: '10.1.2.3:40001', rule: 'pod-streams-need-approval', policyHash: 'cd'.repeat(32) },
      holdSeconds: 300,
    });
    const marked = (await approvals.nobodyWaiting(held.id))!;
    const since = marked.nobodyWaitingSince!.replace(/\.\d+Z$/, 'Z');
    const r = await run(['show', held.id], { token: rita });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`State:          pending (nobody waiting since ${since})\n`);
    expect(r.stdout).toContain(`Scope:          exec ${pod} -c app -n demo -- cat /etc/os-release\n`);
    expect(r.stdout).toContain('Client:         10.1.2.3:40001\n');
    expect(r.stdout).toContain(`Rule:           pod-streams-need-approval (policy sha256:${'cd'.repeat(6)})\n`);
    expect(r.stdout).toContain(`Nobody waiting: since ${since}\n`);
    expect((await run(['get', held.id], { token: rita })).stdout).toBe(r.stdout);
    const line = (await run(['list', '--agent', 'claude'])).stdout.split('\n').find((l) => l.startsWith(held.id));
    expect(line).toMatch(new RegExp(`^${held.id}\\s+pending \\(nobody waiting since ${since}\\)\\s+claude\\s+exec ${pod} -c app -n demo -- cat /etc/os-release\\s+\\d{4}-`));
  });

  it('approve ID --ttl --reason', async () => {
    const held = await pending();
    const r = await run(['approve', held.id, '--ttl', '2m', '--reason', 'go ahead'], { token: bob });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`approval ${held.id} approved:`);
    expect(await approvals.get(held.id)).toMatchObject({ state: 'approved', decidedBy: 'user:bob', ttlSeconds: 120, reason: 'go ahead' });
    const plain = await pending();
    expect((await run(['approve', plain.id])).code).toBe(0);
    expect((await approvals.get(plain.id))?.state).toBe('approved');
  });

  it('a held REST request: list shows its risk, get its body and summary; approve --uses / --scope widen it', async () => {
    const body = Buffer.from(JSON.stringify({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] } }));
    const held = async (n: number): Promise<Approval> => {
      const sha = createHash('sha256').update(body).update(String(n)).digest('hex');
      const shown = describeHeldBody(body, { contentType: 'application/json', resource: 'pods', sha256: sha });
      const binding = { method: 'POST', path: '/api/v1/namespaces/demo/pods', query: 'fieldManager=kubectl-create', bodySha256: sha, contentType: 'application/json', contentEncoding: null };
      return (
        await approvals.requestOrJoin({
          agent,
          scope: { kind: 'rest', verb: 'create', resource: 'pods', namespace: 'demo', name: '', request: binding, maxUses: 1 },
          request: { method: 'POST', path: binding.path, query: binding.query, body: shown.body, risk: shown.risk },
          holdSeconds: 300,
        })
      ).approval;
    };
    const a = await held(1);
    const list = await run(['list', '--agent', 'claude', '--state', 'pending']);
    expect(list.stdout.split('\n').find((l) => l.startsWith(a.id))).toMatch(/create pods -n demo exact-request max-uses=1\s+\S+\s+1 high$/);
    const get = await run(['get', a.id]);
    expect(get.stdout).toMatch(/Request:\s+POST \/api\/v1\/namespaces\/demo\/pods\?fieldManager=kubectl-create\n/);
    expect(get.stdout).toContain(`Body: ${body.length} bytes, application/json, sha256 `);
    expect(get.stdout).toContain('Risk: Pod "p"\n');
    expect(get.stdout).toContain('  high   container c is privileged (securityContext.privileged: true)\n');
    expect(get.stdout).toContain('"privileged": true');
    // The binding names the media type and encoding the approval covers.
    expect(get.stdout).toContain(`?fieldManager=kubectl-create body ${a.scope.kind === 'rest' ? a.scope.request?.bodySha256 : ''}, Content-Type application/json, Content-Encoding none\n`);

    expect((await run(['approve', a.id, '--uses', '3'])).code).toBe(0);
    expect((await approvals.get(a.id))?.scope).toMatchObject({ request: { bodySha256: a.scope.kind === 'rest' ? a.scope.request?.bodySha256 : '' }, maxUses: 3 });
    const b = await held(2);
    const shape = await run(['approve', b.id, '--scope', 'shape']);
    expect(shape.stdout).toBe(`approval ${b.id} approved: create pods -n demo for agent claude, expires ${/expires (\S+)\n/.exec(shape.stdout)?.[1]}\n`);
    expect((await approvals.get(b.id))?.scope).toEqual({ kind: 'rest', verb: 'create', resource: 'pods', namespace: 'demo', name: '' });
    expect((await approvals.get(b.id))?.request).toEqual(b.request);

    expect(await usageError(['approve', a.id, '--scope', 'everything'])).toContain('--scope "everything": give request or shape');
    expect(await usageError(['approve', a.id, '--uses', '0'])).toContain('--uses "0": give a whole number, at least 1');
    const onExec = await run(['approve', (await pending()).id, '--uses', '2']);
    expect(onExec).toMatchObject({ code: 1 });
    expect(onExec.stderr).toContain('uses widens REST approvals only');
    expect(onExec.stderr).toContain('(--uses)');
  });

  it('deny ID --reason', async () => {
    const held = await pending();
    const r = await run(['deny', held.id, '--reason', 'not now']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^approval ${held.id} denied: exec held-\\d+ -c app -n demo for agent claude\\n$`));
    expect(await approvals.get(held.id)).toMatchObject({ state: 'denied', reason: 'not now', decidedBy: 'user:alice' });
  });

  it('revoke ID [--reason]', async () => {
    const granted = JSON.parse((await run(['grant', ...STREAM, '-o', 'json'])).stdout) as Approval;
    const r = await run(['revoke', granted.id, '--reason', 'done', '-o', 'json'], { token: bob });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id: granted.id, state: 'revoked', reason: 'INC-7', revokedBy: 'user:bob' });
    expect((JSON.parse(r.stdout) as Approval).decisions.map((d) => `${d.kind} ${d.by} ${d.reason}`)).toEqual(['granted user:alice INC-7', 'revoked user:bob done']);
    // The table view ends with the history: one line per decision, the revoker named on Revoked.
    const shown = (await run(['get', granted.id])).stdout;
    expect(shown).toMatch(/^Reason: +INC-7$/m);
    expect(shown).toMatch(/^Revoked: +\S+Z by user:bob$/m);
    expect(shown).toMatch(/^Decisions: +\S+Z granted by user:alice \(ttl 600s\): INC-7\n +\S+Z revoked by user:bob: done$/m);
    const other = JSON.parse((await run(['grant', ...STREAM, '-o', 'json'])).stdout) as Approval;
    expect((await run(['revoke', other.id])).code).toBe(0);
    expect((await approvals.get(other.id))?.state).toBe('revoked');
  });

  it('exit 1 with the API message on API errors, naming the flag when the API names a field', async () => {
    const unknown = await run(['approve', 'apr_nothere']);
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(unknown.stderr).toMatch(/^kube-bastion approvals: approval "apr_nothere" not found\n$/);

    const badNs = await run(['grant', ...STREAM.map((a) => (a === 'demo' ? 'Demo' : a))]);
    expect(badNs.code).toBe(1);
    expect(badNs.stderr).toContain('namespace "Demo" is invalid');
    expect(badNs.stderr).toContain('(--namespace)');

    const tooLong = await run(['grant', ...STREAM.map((a) => (a === '10m' ? '30d' : a))]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain('(--ttl)');

    const reviewer = await run(['grant', ...STREAM], { token: rita });
    expect(reviewer.code).toBe(1);
    expect(reviewer.stderr).toContain('role reviewer may not do this');

    const badToken = await run(['list'], { token: 'kbu_wrong' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain('--token');

    const held = await pending();
    await run(['deny', held.id, '--reason', 'no']);
    const twice = await run(['approve', held.id]);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('denied');
  });

  it('exit 1 when the server cannot be reached', async () => {
    const r = await run(['list'], { env: { KUBE_BASTION_URL: 'http://127.0.0.1:1', KUBE_BASTION_TOKEN: alice } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot reach the control API at http:\/\/127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  });

  it('--server and --token override the environment', async () => {
    const r = await run(['list', '--server', control.url, '--token', rita, '-o', 'json'], { env: { KUBE_BASTION_URL: 'http://127.0.0.1:1', KUBE_BASTION_TOKEN: 'nope' } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('items');
  });

  it('watch prints pending requests as they arrive and stops on its signal', async () => {
    const before = await pending();
    const controller = new AbortController();
    let seenLater: () => void = () => {};
    let later: Approval | undefined;
    const printedLater = new Promise<void>((resolve) => (seenLater = resolve));
    const running = run(['watch', '--interval', '1s'], {
      signal: controller.signal,
      onOut: (out) => {
        if (later && out.includes(later.id)) seenLater();
      },
    });
    await new Promise((r) => setTimeout(r, 200));
    later = await pending();
    await printedLater;
    controller.abort();
    const r = await running;
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('ID\tSTATE\tAGENT\tSCOPE\tEXPIRES\tRISK\tREQUEST');
    expect(lines.filter((l) => l.startsWith(before.id))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith(later!.id))).toHaveLength(1);
    expect(lines.findIndex((l) => l.startsWith(before.id))).toBeLessThan(lines.findIndex((l) => l.startsWith(later!.id)));
  });
});

describe('usage errors (exit 2 through main)', () => {
  const cases: Array<[string, string[], RegExp]> = [
    ['no command', [], /give a command/],
    ['an unknown command', ['frobnicate'], /unknown command "frobnicate"/],
    ['an unknown flag', ['list', '--colour', 'red'], /--colour/],
    ['a flag of another command', ['approve', 'apr_x', '--pod', 'p'], /--pod is not an option of "approvals approve"/],
    ['get without an id', ['get'], /takes one approval ID/],
    ['approve with two ids', ['approve', 'a', 'b'], /takes one approval ID/],
    ['list with an argument', ['list', 'pending'], /takes no arguments/],
    ['an unknown state', ['list', '--state', 'bogus'], /--state "bogus"/],
    ['a bad -o', ['list', '-o', 'yaml'], /-o "yaml"/],
    ['grant without --reason', ['grant', ...STREAM.slice(0, -2)], /--reason TEXT is required/],
    ['grant without --ttl', ['grant', ...STREAM.filter((a, i, all) => a !== '--ttl' && all[i - 1] !== '--ttl')], /--ttl DURATION is required/],
    ['grant with a bad --ttl', ['grant', ...STREAM.map((a) => (a === '10m' ? 'ten minutes' : a))], /--ttl "ten minutes"/],
    ['grant without --agent', ['grant', ...STREAM.slice(2)], /--agent NAME is required/],
    ['grant without --container', ['grant', ...STREAM.filter((a, i, all) => a !== '--container' && all[i - 1] !== '--container')], /--container CONTAINER is required/],
    ['grant mixing stream and REST flags', ['grant', ...STREAM, '--verb', 'get'], /--verb is for REST grants and --pod for stream grants/],
    ['grant with no scope', ['grant', '--agent', 'claude', '--ttl', '1m', '--reason', 'r'], /grant needs a scope/],
    ['grant with a bad --verbs', ['grant', ...STREAM.map((a) => (a === 'exec,attach' ? 'exec,shell' : a))], /--verbs: "shell"/],
    ['grant with a --command that is not JSON', ['grant', ...STREAM, '--command', 'ls -l'], /--command "ls -l": give one argv as a JSON array/],
    ['grant with a --command that is not an argv', ['grant', ...STREAM, '--command', '{"a":1}'], /--command "\{\\"a\\":1\}": give one argv/],
    ['grant with a bad --max-sessions', ['grant', ...STREAM, '--max-sessions', '0'], /--max-sessions "0"/],
    ['REST grant without --resource', ['grant', '--agent', 'claude', '--verb', 'get', '--ttl', '1m', '--reason', 'r'], /--resource RESOURCE is required/],
    ['deny without --reason', ['deny', 'apr_x'], /--reason TEXT is required/],
    ['approve with a bad --ttl', ['approve', 'apr_x', '--ttl', '5 minutes'], /--ttl "5 minutes"/],
  ];
  it.each(cases)('%s', async (_, args, message) => {
    expect(await usageError(args)).toMatch(message);
  });

  it('no token anywhere, or a server that is not http(s)', async () => {
    expect(await usageError(['list'], { KUBE_BASTION_URL: control.url })).toMatch(/no user token: pass --token TOKEN or set KUBE_BASTION_TOKEN/);
    expect(await usageError(['list', '--server', 'ftp://x'], { KUBE_BASTION_TOKEN: alice })).toMatch(/--server "ftp:\/\/x"/);
    expect(await usageError(['list', '--server', 'not a url'], { KUBE_BASTION_TOKEN: alice })).toMatch(/--server "not a url"/);
    expect(await usageError(['list', '--ca', join(dir, 'missing.pem')], { KUBE_BASTION_TOKEN: alice })).toMatch(/--ca/);
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('kube-bastion approvals <command>');
  });
});

describe('as a process', () => {
  it('runs under tsx and exits 1 on an API error, 0 on success', async () => {
    const script = `import { runApprovals } from ${JSON.stringify(join(process.cwd(), 'src/cli/approvals.ts'))}; process.exitCode = await runApprovals(process.argv.slice(1));`;
    const env = { ...process.env, KUBE_BASTION_URL: control.url, KUBE_BASTION_TOKEN: alice };
    // Asynchronous: the server answering it runs in this process.
    const exec = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...args], { env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const ok = await exec(['list', '-o', 'json']);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout)).toHaveProperty('items');
    const bad = await exec(['get', 'apr_nothere']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('not found');
  });
});

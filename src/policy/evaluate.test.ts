import { describe, expect, it } from 'vitest';
import type { KubeRequest } from '../model/request.js';
import { evaluate, evaluateWithRule } from './evaluate.js';
import { parsePolicy } from './load.js';
import { agent, execRequest as exec, nonResourceRequest as nr, resourceRequest as r, streamRequest as stream } from './test-support.js';

function policy(rules: string, defaultAction = 'deny') {
  return parsePolicy(`apiVersion: kube-bastion/v1\nkind: Policy\ndefault: ${defaultAction}\nrules:\n${rules}`, 'test.yaml');
}

/** The rule that decides `req` (or `default`). */
function ruleFor(p: ReturnType<typeof policy>, req: KubeRequest, impersonation = false, principal = agent): string {
  return evaluate(p, req, { principal, impersonation }).rule;
}

describe('policy evaluation', () => {
  it('first match wins, then the default', () => {
    const p = policy(`  - name: first\n    match: { resources: [pods] }\n    action: deny\n  - name: second\n    match: { resources: [pods] }\n    action: allow\n`, 'approval');
    expect(evaluate(p, r('get', 'pods', { ns: 'a' }), { principal: agent, impersonation: false })).toMatchObject({ action: 'deny', rule: 'first', policyHash: p.hash });
    expect(evaluate(p, r('get', 'services', { ns: 'a' }), { principal: agent, impersonation: false })).toMatchObject({ action: 'approval', rule: 'default' });
  });

  it('resource patterns: plain, subresource, wildcards and groups', () => {
    const p = policy(
      [
        ['plain', 'pods'],
        ['sub', 'services/proxy'],
        ['any-sub', 'deployments/*'],
        ['star-sub', '*/status'],
        ['grouped', 'jobs.batch'],
        ['group-star', '*.rbac.authorization.k8s.io'],
      ]
        .map(([name, res]) => `  - name: ${name}\n    match: { resources: ["${res}"] }\n    action: allow\n`)
        .join(''),
    );
    expect(ruleFor(p, r('get', 'pods', { ns: 'a', name: 'x' }))).toBe('plain');
    expect(ruleFor(p, r('get', 'pods', { ns: 'a', name: 'x', sub: 'log' }))).toBe('default'); // `pods` is not its subresources
    expect(ruleFor(p, r('get', 'services', { ns: 'a', name: 'x', sub: 'proxy' }))).toBe('sub');
    expect(ruleFor(p, r('get', 'services', { ns: 'a', name: 'x' }))).toBe('default');
    expect(ruleFor(p, r('update', 'deployments', { group: 'apps', ns: 'a', name: 'x', sub: 'scale' }))).toBe('any-sub');
    expect(ruleFor(p, r('get', 'deployments', { group: 'apps', ns: 'a', name: 'x' }))).toBe('default'); // RES/* is subresources only
    expect(ruleFor(p, r('update', 'nodes', { name: 'n', sub: 'status' }))).toBe('star-sub');
    expect(ruleFor(p, r('get', 'jobs', { group: 'batch', ns: 'a' }))).toBe('grouped');
    expect(ruleFor(p, r('get', 'jobs', { group: 'example.com', ns: 'a' }))).toBe('default');
    expect(ruleFor(p, r('create', 'roles', { group: 'rbac.authorization.k8s.io', ns: 'a' }))).toBe('group-star');
    expect(ruleFor(p, r('get', 'roles', { group: 'rbac.authorization.k8s.io', ns: 'a', name: 'x', sub: 'anything' }))).toBe('group-star');
  });

  it('apiGroups: "" is the core group', () => {
    const p = policy(`  - name: core\n    match: { apiGroups: [""], resources: [events] }\n    action: allow\n`);
    expect(ruleFor(p, r('create', 'events', { ns: 'a' }))).toBe('core');
    expect(ruleFor(p, r('create', 'events', { group: 'events.k8s.io', ns: 'a' }))).toBe('default');
  });

  it('namespaces and names: exact, prefix*, * (any) and "" (none)', () => {
    const p = policy(
      `  - name: cluster\n    match: { namespaces: [""] }\n    action: deny\n` +
        `  - name: team\n    match: { namespaces: ["team-*"], names: ["web-*"] }\n    action: allow\n` +
        `  - name: collections\n    match: { namespaces: [prod], names: [""] }\n    action: allow\n` +
        `  - name: anywhere\n    match: { namespaces: ["*"], names: ["*"] }\n    action: approval\n`,
    );
    expect(ruleFor(p, r('get', 'nodes', { name: 'n' }))).toBe('cluster');
    expect(ruleFor(p, r('list', 'pods'))).toBe('cluster');
    expect(ruleFor(p, r('get', 'pods', { ns: 'team-a', name: 'web-1' }))).toBe('team');
    expect(ruleFor(p, r('get', 'pods', { ns: 'team-a', name: 'db-1' }))).toBe('anywhere');
    expect(ruleFor(p, r('list', 'pods', { ns: 'prod' }))).toBe('collections');
    expect(ruleFor(p, r('get', 'pods', { ns: 'prod', name: 'x' }))).toBe('anywhere');
    expect(ruleFor(p, r('list', 'pods', { ns: 'staging' }))).toBe('default');
  });

  it('agents match by name or id', () => {
    const p = policy(`  - name: ci\n    match: { agents: ["ci-*", agt_42] }\n    action: allow\n`);
    expect(ruleFor(p, r('get', 'pods', { ns: 'a' }), false, { kind: 'agent', id: 'agt_1', name: 'ci-runner' })).toBe('ci');
    expect(ruleFor(p, r('get', 'pods', { ns: 'a' }), false, { kind: 'agent', id: 'agt_42', name: 'other' })).toBe('ci');
    expect(ruleFor(p, r('get', 'pods', { ns: 'a' }))).toBe('default');
  });

  it('streams match both transports and nothing else', () => {
    const p = policy(`  - name: exec-only\n    match: { streams: [exec] }\n    action: approval\n`, 'allow');
    expect(ruleFor(p, stream('exec', 'GET', 'a', 'p'))).toBe('exec-only');
    expect(ruleFor(p, stream('exec', 'POST', 'a', 'p'))).toBe('exec-only');
    expect(ruleFor(p, stream('attach', 'POST', 'a', 'p'))).toBe('default');
    expect(ruleFor(p, r('create', 'pods', { ns: 'a' }))).toBe('default');
  });

  it('which kind of request a rule applies to', () => {
    const p = policy(
      `  - name: paths\n    match: { nonResourcePaths: ["/version"] }\n    action: allow\n` +
        `  - name: all-resources\n    match: { resources: ["*"], verbs: [get] }\n    action: allow\n` +
        `  - name: both-kinds\n    match: { verbs: [delete] }\n    action: deny\n`,
      'approval',
    );
    expect(ruleFor(p, nr('GET', '/version'))).toBe('paths');
    expect(ruleFor(p, nr('GET', '/api'))).toBe('default'); // resources: ["*"] never matches a path
    expect(ruleFor(p, r('get', 'pods', { ns: 'a', name: 'x' }))).toBe('all-resources');
    expect(ruleFor(p, nr('DELETE', '/x'))).toBe('both-kinds');
    expect(ruleFor(p, r('delete', 'pods', { ns: 'a', name: 'x' }))).toBe('both-kinds');
  });

  it('impersonation: true and false', () => {
    const p = policy(`  - name: imp\n    match: { impersonation: true }\n    action: deny\n  - name: plain\n    match: { impersonation: false }\n    action: allow\n`);
    expect(ruleFor(p, nr('GET', '/api'), true)).toBe('imp');
    expect(ruleFor(p, nr('GET', '/api'), false)).toBe('plain');
  });

  it('exposes the deciding rule, e.g. for autoApprove', () => {
    const p = policy(`  - name: auto\n    match: { streams: [exec], namespaces: [dev] }\n    action: approval\n    autoApprove: { ttlSeconds: 900 }\n`);
    const hit = evaluateWithRule(p, stream('exec', 'POST', 'dev', 'p'), { principal: agent, impersonation: false });
    expect(hit.decision).toMatchObject({ action: 'approval', rule: 'auto' });
    expect(hit.rule?.autoApprove).toEqual({ ttlSeconds: 900 });
    expect(evaluateWithRule(p, stream('exec', 'POST', 'prod', 'p'), { principal: agent, impersonation: false }).rule).toBeUndefined();
  });

  it('commands: exact argv, a glob within one argument, a final "**" (prefix); exec only', () => {
    const p = policy(
      `  - name: probe\n    match: { commands: [[test, -d, "*"]] }\n    action: allow\n` +
        `  - name: logs\n    match: { commands: [[cat, "/var/log/*.log"], [ls, "**"]] }\n    action: allow\n`,
      'approval',
    );
    expect(ruleFor(p, exec('a', 'p', ['test', '-d', '/tmp']))).toBe('probe');
    expect(ruleFor(p, exec('a', 'p', ['test', '-d', '/tmp'], 'POST'))).toBe('probe'); // SPDY alike
    expect(ruleFor(p, exec('a', 'p', ['test', '-d', '']))).toBe('probe'); // `*` matches nothing, too
    expect(ruleFor(p, exec('a', 'p', ['test', '-d', 'a b; rm -rf /']))).toBe('probe'); // one argument, never a shell
    expect(ruleFor(p, exec('a', 'p', ['test', '-d', '/tmp', '-o', 'x']))).toBe('default'); // no extra arguments
    expect(ruleFor(p, exec('a', 'p', ['test', '-d']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['test', '-f', '/tmp']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['/usr/bin/test', '-d', '/tmp']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['sh', '-c', 'test -d /tmp']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['cat', '/var/log/app.log']))).toBe('logs');
    expect(ruleFor(p, exec('a', 'p', ['cat', '/var/log/a/../../etc/shadow.log']))).toBe('logs'); // a glob is text, not a path: say so in docs
    expect(ruleFor(p, exec('a', 'p', ['cat', '/var/log/app.log\n']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['cat', '/var/log/app.txt']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['ls']))).toBe('logs'); // "**" matches zero arguments
    expect(ruleFor(p, exec('a', 'p', ['ls', '-la', '/']))).toBe('logs');
    expect(ruleFor(p, exec('a', 'p', ['lsof']))).toBe('default');
    expect(ruleFor(p, exec('a', 'p', ['ls.', 'x']))).toBe('default'); // "." is literal
    // Only exec requests: an attach (no command) or a REST request never matches a commands rule.
    expect(ruleFor(p, stream('attach', 'GET', 'a', 'p'))).toBe('default');
    expect(ruleFor(p, r('create', 'pods', { ns: 'a' }))).toBe('default');
    // A pods/exec request the parser did not mark as a stream still counts as exec.
    const unmarked = r('create', 'pods', { ns: 'a', name: 'p', sub: 'exec' });
    unmarked.query.append('command', 'ls');
    expect(ruleFor(p, unmarked)).toBe('logs');
  });

  it('commands AND-ed with the other fields; autoApprove on a commands rule', () => {
    const p = policy(`  - name: auto-ls\n    match: { namespaces: [dev], names: ["web-*"], commands: [[ls, "**"]] }\n    action: approval\n    autoApprove: { ttlSeconds: 60, maxSessions: 1 }\n`);
    expect(evaluateWithRule(p, exec('dev', 'web-0', ['ls', '/']), { principal: agent, impersonation: false })).toMatchObject({ decision: { action: 'approval', rule: 'auto-ls' }, rule: { autoApprove: { ttlSeconds: 60, maxSessions: 1 } } });
    expect(ruleFor(p, exec('prod', 'web-0', ['ls', '/']))).toBe('default');
    expect(ruleFor(p, exec('dev', 'db-0', ['ls', '/']))).toBe('default');
  });
});

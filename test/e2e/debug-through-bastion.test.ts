// `kubectl debug -it` through the bastion: adding the ephemeral container is a held write (its
// approval bound to that exact PATCH), attaching to it is a held attach; both approved, the shell
// runs as a real process in the simulated pod, and the session is recorded like any attach.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Approval } from '../../src/model/approval.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { approvalIds, controlApi, newPending } from '../helpers/control.js';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';
import { TmuxSession } from '../helpers/tmux.js';

let b: TestBastion;
let approver: string;
const terms: TmuxSession[] = [];
beforeAll(async () => {
  b = await startTestBastion();
  approver = (await b.bastion.store.users.createUser('alice', 'approver')).token;
});
afterEach(() => {
  for (const t of terms.splice(0)) t.kill();
});
afterAll(async () => {
  await b?.stop();
});

async function approveNext(known: Set<string>): Promise<Approval> {
  const [pending] = await newPending(b, approver, known);
  known.add(pending!.id);
  const r = await controlApi<Approval>(b, approver, 'POST', `/v1/approvals/${pending!.id}/approve`, {});
  expect(r.status).toBe(200);
  return r.json;
}

describe.each([27, 33])('kubectl 1.%i debug -it demo/web-0 --image=busybox --target=app -- sh', (minor) => {
  it('holds the ephemeral container and the attach, each approved, runs the shell, and records it as an attach', async () => {
    const known = await approvalIds(b, approver);
    const term = new TmuxSession();
    terms.push(term);
    term.start(`${kubectlPath(minor)} --kubeconfig ${b.agentKubeconfig} debug -it -n demo web-0 --image=busybox --target=app -- sh`, { width: 100, height: 30 }, { HOME: freshHome() });

    const patch = await approveNext(known);
    expect(patch.scope).toMatchObject({ kind: 'rest', verb: 'patch', resource: 'pods/ephemeralcontainers', namespace: 'demo', name: 'web-0' });
    const attach = await approveNext(known);
    expect(attach.scope).toMatchObject({ kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['attach'] });
    const container = (attach.scope as { container: string }).container;
    expect(container).toMatch(/^debugger-[a-z0-9]+$/);

    await term.waitFor(/If you don't see a command prompt, try pressing enter/);
    term.type(`echo through-the-bastion-$((6*7))-${minor}`);
    await term.waitFor(new RegExp(`^through-the-bastion-42-${minor}$`, 'm'));
    term.type('exit');
    await term.waitFor(/EXIT=0/);

    const [session] = await b.bastion.store.sessions.list({ approvalId: attach.id });
    expect({ operation: session!.operation, container: session!.container }).toEqual({ operation: 'attach', container });
    await expect.poll(async () => (await b.bastion.store.sessions.get(session!.id))?.castSha256 ?? null, { timeout: 10_000 }).not.toBeNull();
    const cast = readFileSync((await b.bastion.store.sessions.get(session!.id))!.castPath!, 'utf8');
    expect(cast).toContain(`through-the-bastion-42-${minor}`);
    expect(JSON.parse(cast.split('\n')[0]!)).toMatchObject({ kube_bastion: expect.objectContaining({ operation: 'attach', container }) });
  });
});

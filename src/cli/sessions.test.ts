// `kube-bastion sessions ...` against a real control endpoint over a store with recorded sessions
// (an exec with its recording, a port-forward with its connections).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ControlEndpoint } from '../api/control-endpoint.js';
import { startTestControl } from '../api/test-support.js';
import { BastionError } from '../errors/index.js';
import { fixture, forwardedSession, sha, type Fixture } from '../evidence/test-support.js';
import type { Session } from '../store/types.js';
import { runApprovals } from './approvals.js';
import { runSessions } from './sessions.js';

let f: Fixture;
let control: ControlEndpoint;
let token: string;
let forward: Session;

beforeAll(async () => {
  f = await fixture('kb-sessions-cli-');
  control = await startTestControl({ store: f.store, approvals: f.approvals, recordingsDir: f.recordingsDir, dataDir: f.dataDir });
  token = (await f.store.users.createUser('rita', 'reviewer')).token;
  const approval = await f.approvals.grant(
    { agent: 'claude', scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', verbs: ['portforward'], ports: [8080] }, ttlSeconds: 600, reason: 'INC-5' },
    { kind: 'user', name: 'alice', role: 'approver' },
  );
  forward = await forwardedSession(f, approval, [{ port: 8080, in: 'GET /', out: 'HTTP/1.1 200' }, { port: 22, refused: 'port 22 is not among the approved ports (8080)' }]);
});

afterAll(async () => {
  await control?.close();
  await f?.close();
});

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runSessions(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: { KUBE_BASTION_URL: control.url, KUBE_BASTION_TOKEN: token } });
  return { code, stdout, stderr };
}

describe('kube-bastion sessions', () => {
  it("show ID prints a port-forward's connections: port, times, outcome, bytes, protocol, hashes; a refused one says so", async () => {
    const r = await run(['show', forward.id]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain(`Target:    portforward web-0 -n demo\n`);
    expect(r.stdout).toContain('\nConnections (2):\n');
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('  SEQ'));
    expect(lines[at]).toMatch(/^ {2}SEQ\s+PORT\s+STARTED\s+ENDED\s+OUTCOME\s+IN\s+OUT\s+PROTOCOL$/);
    expect(lines[at + 1]).toMatch(/^ {2}1\s+8080\s+\S+Z\s+\S+Z\s+closed\s+5\s+12\s+unrecognised$/);
    expect(lines[at + 2]).toMatch(new RegExp(`^ {6}sha256 in ${sha('GET /')} out ${sha('HTTP/1.1 200')}$`));
    expect(lines[at + 3]).toMatch(/^ {6}raw \S+\.1\.raw sha256 [0-9a-f]{64}$/);
    expect(lines[at + 4]).toMatch(/^ {2}2\s+22\s+\S+Z\s+\S+Z\s+refused\s+0\s+0\s+-$/);
    expect(lines[at + 5]).toMatch(/^ {6}refused, outside the approved ports: port 22 is not among the approved ports \(8080\)$/);
    const json = JSON.parse((await run(['get', forward.id, '-o', 'json'])).stdout) as { connections: unknown[] };
    expect(json.connections).toEqual(JSON.parse(JSON.stringify(await f.store.sessions.listConnections(forward.id))));
  });

  it('show of an exec session has no connections section; list prints one row per session', async () => {
    const exec = f.sessions[0]!;
    const shown = await run(['show', exec.id]);
    expect(shown.stdout).toMatch(/\nTarget:\s+exec web-0 -c app -n demo -- ls -l\n/);
    expect(shown.stdout).not.toContain('Connections');
    const list = await run(['list', '--approval', forward.approvalId!]);
    expect(list.stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^ID\s+STATE\s+AGENT\s+TARGET\s+STARTED\s+END\s+APPROVAL$/),
      expect.stringMatching(new RegExp(`^${forward.id}\\s+ended\\s+claude\\s+portforward web-0 -n demo\\s+\\S+Z\\s+client-closed\\s+${forward.approvalId}$`)),
    ]);
  });

  it("the record's text lists a port-forward's connections, the refused one as outside the approved ports", async () => {
    let stdout = '';
    const code = await runApprovals(['record', forward.approvalId!], { stdout: (t) => (stdout += t), stderr: () => undefined, env: { KUBE_BASTION_URL: control.url, KUBE_BASTION_TOKEN: token } });
    expect(code).toBe(0);
    expect(stdout).toContain('scope: portforward into demo/web-0, ports 8080;');
    expect(stdout).toMatch(/\n {6}connection 1 port 8080 {2}\S+Z \.\. \S+Z {2}closed {2}in 5 B \/ out 12 B {2}unrecognised {2}sha256 in [0-9a-f]{12} out [0-9a-f]{12}\n {8}in {2}inside the approved ports; closed\n/);
    expect(stdout).toMatch(/\n {6}connection 2 port 22 {2}\S+Z \.\. \S+Z {2}refused {2}in 0 B \/ out 0 B\n {8}OUT outside the approved ports \(8080\): port 22 was refused: port 22 is not among the approved ports \(8080\)\n/);
  });

  it('exit 1 with the API message for an unknown session; usage errors for bad arguments', async () => {
    expect(await run(['show', 'ses_aaaaaaaaaaaaaaaaaaaa'])).toEqual({ code: 1, stdout: '', stderr: 'kube-bastion sessions: session "ses_aaaaaaaaaaaaaaaaaaaa" not found\n' });
    for (const args of [[], ['show'], ['list', 'x'], ['list', '--state', 'paused'], ['show', 'x', '--agent', 'a'], ['replay', 'x']]) {
      await expect(run(args), args.join(' ')).rejects.toSatisfy((e) => e instanceof BastionError && e.code === 'USAGE');
    }
  });
});

// A flood of unauthenticated requests with long URLs: each gets its 401 Status, but only a few get
// their own (bounded) audit row; the rest are counted into one aggregate row per address per
// interval, so the database barely grows and the log still says how many came, when, and what.
import https from 'node:https';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE_NAME } from '../../src/store/db.js';
import type { AuditRecord } from '../../src/store/index.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { controlApi } from '../helpers/control.js';
import { sample } from '../helpers/metrics.js';

let b: TestBastion;
let adminToken: string;

beforeAll(async () => {
  // A short interval, so the aggregate rows are written while the test waits.
  b = await startTestBastion({ extraArgs: ['--audit-failure-interval', '1'] });
  ({ token: adminToken } = await b.bastion.store.users.createUser('flood-admin', 'admin'));
});

afterAll(async () => {
  await b?.stop();
});

/** The database's bytes on disk: the SQLite file and its WAL. */
function databaseBytes(): number {
  const file = join(b.dir, 'data', DB_FILE_NAME);
  const size = (p: string): number => {
    try {
      return statSync(p).size;
    } catch {
      return 0;
    }
  };
  return size(file) + size(`${file}-wal`);
}

function get(agent: https.Agent, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(`${b.bastion.kubeUrl}${path}`, { agent, ca: b.bastion.tls.caPem }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a flood of unauthenticated requests', () => {
  it('answers every one with its 401 Status, grows the database by under 2 MB, and aggregates the rows', async () => {
    const N = 10_000;
    const longUrl = `/api/v1/namespaces/demo/pods?labelSelector=${'a'.repeat(12 * 1024)}`;
    const before = databaseBytes();
    const cursor = await b.auditCount();
    const agent = new https.Agent({ keepAlive: true, maxSockets: 16 });
    const statuses = new Map<number, number>();
    let notStatus = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < N) {
        next++;
        const r = await get(agent, longUrl);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        const body = JSON.parse(r.body) as { kind?: string; code?: number; reason?: string };
        if (body.kind !== 'Status' || body.code !== 401 || body.reason !== 'Unauthorized') notStatus++;
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    agent.destroy();
    expect(Object.fromEntries(statuses)).toEqual({ 401: N });
    expect(notStatus).toBe(0);

    // Every failure is in the log: its own row or counted in an aggregate (written each interval).
    let rows: AuditRecord[] = [];
    let counted = 0;
    for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      rows = await b.auditSince(cursor);
      const own = rows.filter((r) => r.event === 'request').length;
      const aggregated = rows.filter((r) => r.event === 'requests.aggregated').reduce((n, r) => n + (JSON.parse(r.details!) as { count: number }).count, 0);
      counted = own + aggregated;
      if (counted >= N) break;
    }
    expect(counted).toBe(N);
    const own = rows.filter((r) => r.event === 'request');
    // The burst (10) and the refill (6 a minute) over the few seconds the flood took.
    expect(own.length).toBeGreaterThanOrEqual(10);
    expect(own.length).toBeLessThan(30);
    expect(own[0]).toMatchObject({ agentId: null, method: 'GET', path: longUrl.slice(0, 256), decision: 'deny', rule: 'authentication', statusCode: 401 });
    expect(JSON.parse(own[0]!.details!)).toEqual({ truncated: { path: { truncated: true, length: longUrl.length, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } } });

    const growth = databaseBytes() - before;
    expect(growth).toBeLessThan(2 * 1024 * 1024);

    // The aggregate rows as the control API lists them: the address, the count, first and last time.
    const { status, json } = await controlApi<{ items: AuditRecord[] }>(b, adminToken, 'GET', '/v1/audit?event=requests.aggregated&limit=1000');
    expect(status).toBe(200);
    expect(json.items.length).toBeGreaterThan(0);
    const first = json.items[0]!;
    expect(first).toMatchObject({ event: 'requests.aggregated', source: '127.0.0.1', method: 'GET', path: longUrl.slice(0, 256), rule: 'authentication', statusCode: 401 });
    const details = JSON.parse(first.details!) as Record<string, unknown>;
    expect(details).toMatchObject({ failure: 'unauthenticated', intervalSeconds: 1, statuses: { 401: details.count }, rules: { authentication: details.count } });
    expect(details.count).toBeGreaterThan(0);
    expect(Date.parse(details.last as string)).toBeGreaterThanOrEqual(Date.parse(details.first as string));
    const total = json.items.reduce((n, r) => n + (JSON.parse(r.details!) as { count: number }).count, 0);
    expect(total).toBe(N - own.length);

    // The metric counts what was aggregated instead of written.
    const metrics = await (await fetch(`${b.bastion.controlUrl}/metrics`)).text();
    expect(sample(metrics, 'kube_bastion_audit_aggregated_requests_total', { failure: 'unauthenticated' })).toBe(total);
    expect(sample(metrics, 'kube_bastion_audit_aggregate_rows_total')).toBe(json.items.length);
    // The chain is whole.
    expect((await b.bastion.store.audit.verify()).ok).toBe(true);
  }, 120_000);
});

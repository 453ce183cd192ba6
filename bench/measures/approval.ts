// Approval latency (from the old bench/relay.ts): an exec held for approval; from the approve call
// to the first byte at the client. A direct exec's whole time is printed next to it.
import { nowMs, openExec } from '../lib/clients.js';
import type { Ctx } from '../lib/context.js';
import { spread, verdict, fmt, type Row } from '../lib/report.js';

const ECHO = { namespace: 'default', pod: 'busybox', container: 'busybox', command: ['echo', 'held'] };

async function firstByte(ctx: Ctx, open: Promise<Awaited<ReturnType<typeof openExec>>>): Promise<number> {
  const s = await open;
  const at = await new Promise<number>((resolve) => s.stdout.once('data', () => resolve(nowMs())));
  s.stderr.resume();
  s.stdout.resume();
  await s.status;
  return at;
}

export async function measureApproval(ctx: Ctx): Promise<Row[]> {
  const latencies: number[] = [];
  const directs: number[] = [];
  for (let i = 0; i < ctx.sizes.approvalRounds; i++) {
    ctx.progress(`approval latency ${i + 1}/${ctx.sizes.approvalRounds}`);
    const before = new Set((await ctx.api<{ items: Array<{ id: string }> }>('GET', '/v1/approvals')).items.map((a) => a.id));
    const held = firstByte(ctx, openExec(ctx.bastion, 'websocket', ECHO));
    let pending: { id: string } | undefined;
    while (!pending) {
      await new Promise((r) => setTimeout(r, 20));
      pending = (await ctx.api<{ items: Array<{ id: string }> }>('GET', '/v1/approvals?state=pending')).items.find((a) => !before.has(a.id));
    }
    const approvedAt = nowMs();
    await ctx.api('POST', `/v1/approvals/${pending.id}/approve`, {});
    latencies.push((await held) - approvedAt);
    await ctx.api('POST', `/v1/approvals/${pending.id}/revoke`, { reason: 'bench cleanup' }).catch(() => undefined);
    const t0 = nowMs();
    await firstByte(ctx, openExec(ctx.direct, 'websocket', ECHO));
    directs.push(nowMs() - t0);
  }
  ctx.raw.approval = { approveToFirstByteMs: latencies, directExecMs: directs };
  const s = spread(latencies);
  return [
    {
      id: 'approval.firstbyte',
      measure: 'approve call -> first byte of a held exec (direct: a whole exec)',
      unit: 'ms',
      direct: spread(directs),
      bastion: s,
      derived: `bastion/direct ${fmt(s.median / spread(directs).median)}`,
      target: '< 200 ms (relay.ts goal)',
      verdict: verdict(s.median < 200),
    },
  ];
}

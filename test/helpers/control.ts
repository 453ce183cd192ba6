// The control API as e2e tests speak it: one JSON call with a user token, and waiting for the
// pending approval a held request creates.
import type { Approval } from '../../src/model/approval.js';
import type { TestBastion } from './bastion.js';

export async function controlApi<T>(b: TestBastion, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(`${b.bastion.controlUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as T };
}

/** The ids of every approval now. */
export async function approvalIds(b: TestBastion, token: string): Promise<Set<string>> {
  const { json } = await controlApi<{ items: Approval[] }>(b, token, 'GET', '/v1/approvals');
  return new Set(json.items.map((a) => a.id));
}

/** Waits until `n` pending approvals of `agent` not in `known` exist; returns them oldest first. */
export async function newPending(b: TestBastion, token: string, known: Set<string>, n = 1, agent = b.agentName): Promise<Approval[]> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 25))) {
    const { json } = await controlApi<{ items: Approval[] }>(b, token, 'GET', `/v1/approvals?state=pending&agent=${agent}`);
    const fresh = json.items.filter((a) => !known.has(a.id));
    if (fresh.length >= n) return fresh.reverse();
  }
  throw new Error(`fewer than ${n} new pending approvals of ${agent} appeared`);
}

/**
 * A second approver, made with an admin token against a control URL: an admin owns the agents it
 * makes and may not approve for them.
 */
export async function createApprover(controlUrl: string, adminToken: string, name = 'ops'): Promise<string> {
  const res = await fetch(`${controlUrl}/v1/users`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, role: 'approver' }),
  });
  if (res.status !== 201) throw new Error(`creating approver ${name}: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

// What every measure gets: the endpoints of this run, the sizes for the mode, the control API.
import type { BastionEndpoint, Endpoint } from './procs.js';

/** Where the sim's extra pod objects (for the REST LIST) live. */
export const BENCH_NAMESPACE = 'bench';

/**
 * A TLS relay's material in its directory (servers.ts reads what procs.ts writes): its serving
 * cert and key, and `ca`, the CA it verifies its upstream against (the floor: the one CA that
 * signs both the relay and the echo; the node pipe: the sim's CA).
 */
export const RELAY_TLS_FILES = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;

export interface Sizes {
  rounds: number;
  /** rounds of the exec throughput measure (a bastion round of 256 MiB each way takes ~30 s here) */
  execRounds: number;
  /** exec throughput payload, each way */
  execBytes: number;
  echoSamples: number;
  /** concurrency: the main level, then the ramp's levels up to the cap */
  sessions: number;
  rampLevels: number[];
  loadEchoSamples: number;
  loadWindowMs: number;
  /** sessions held: idle sessions opened through the bastion and checked alive (target 5,000) */
  holdSessions: number;
  cutoffSessions: number;
  cutoffTtlSeconds: number;
  restPods: number;
  restWindowMs: number;
  approvalRounds: number;
}

export const FULL: Sizes = {
  rounds: 3,
  execRounds: 2,
  execBytes: 256 * 2 ** 20,
  echoSamples: 2000,
  sessions: 1000,
  rampLevels: [1500],
  loadEchoSamples: 500,
  loadWindowMs: 10_000,
  holdSessions: 5000,
  cutoffSessions: 200,
  cutoffTtlSeconds: 75,
  restPods: 1000,
  restWindowMs: 2000,
  approvalRounds: 3,
};

export const SMOKE: Sizes = {
  rounds: 1,
  execRounds: 1,
  execBytes: 2 ** 20,
  echoSamples: 40,
  sessions: 10,
  rampLevels: [15],
  loadEchoSamples: 20,
  loadWindowMs: 1000,
  holdSessions: 20,
  cutoffSessions: 10,
  cutoffTtlSeconds: 6,
  restPods: 20,
  restWindowMs: 300,
  approvalRounds: 1,
};

export interface Ctx {
  sizes: Sizes;
  smoke: boolean;
  direct: Endpoint;
  nginx: Endpoint | undefined;
  bastion: BastionEndpoint;
  bastionPid: number;
  /** The sim's process (its CPU per request is the direct path's server cost). */
  simPid: number;
  /** direct, nginx (when present), bastion */
  targets: Endpoint[];
  /** A bare Node TLS relay in front of the sim (servers.ts tls-relay, plain): a comparator for the exec measures. */
  pipe: Endpoint;
  /** direct, nginx (when present), node pipe, bastion: what the exec throughput and echo measures compare */
  execTargets: Endpoint[];
  /** A bare Node HTTP reverse proxy in front of the sim (servers.ts http-proxy): a comparator for the REST measure. */
  proxy: Endpoint;
  /** direct, nginx (when present), node pipe, node proxy, bastion: what the REST measure compares */
  restTargets: Endpoint[];
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
  progress(msg: string): void;
  /** The run's scratch directory (removed at the end unless --keep). */
  dir: string;
  /** Raw numbers for the JSON, by measure (a measure may read what an earlier one left here). */
  raw: Record<string, unknown>;
}

/** The targets in a different order each round, so no endpoint always runs first (or warm). */
export function rotated<T>(xs: T[], round: number): T[] {
  const k = round % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

export async function approve(ctx: Ctx, pod: string, container: string, ttlSeconds: number): Promise<{ id: string; expiresAt: string }> {
  const namespace = pod === 'busybox' ? 'default' : 'demo';
  const a = await ctx.api<{ id: string; expiresAt: string }>('POST', '/v1/approvals', {
    agent: ctx.bastion.agent,
    namespace,
    pod,
    container,
    verbs: ['exec'],
    ttlSeconds,
    reason: 'bench',
  });
  if (!a.id) throw new Error(`approval refused: ${JSON.stringify(a)}`);
  return a;
}

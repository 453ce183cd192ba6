// Unauthenticated and malformed requests cost the client nothing, so each one cannot cost the
// bastion a full, fsync'd audit row: per client address (an IPv6 /64 counts as one) a token bucket
// lets a few rows through in full, and the rest of the interval's failures from that address are
// counted into one aggregate row (count, first and last time, statuses and rules, a sample). A
// bucket over all addresses caps what many addresses together write. Nothing is dropped: every
// failure is either its own row or counted in an aggregate.
import { isIPv6 } from 'node:net';
import type { AuditEventInput } from '../store/types.js';
import { requestAuditEvent } from './audit-row.js';
import type { FailureClass, RequestAuditRecord } from './ports.js';

export interface FailureAuditLimits {
  /** Failure rows written in full per address before the rate applies. */
  burst: number;
  /** Failure rows per minute per address once the burst is spent. */
  perMinute: number;
  /** Seconds each aggregate row covers. */
  intervalSeconds: number;
}

/** All addresses together may write this many times one address's burst and rate. */
export const GLOBAL_FACTOR = 10;
/** Addresses tracked at once; beyond, the least recently seen bucket is forgotten and new aggregates share one row. */
export const MAX_TRACKED_ADDRESSES = 10_000;

/** The failures of one address (and agent, for malformed requests) in one interval. */
export interface FailureAggregate {
  /** The address group (`ip`, `prefix::/64`), or `*` for the shared overflow row. */
  address: string;
  failure: FailureClass;
  agent: { id: string; name: string } | null;
  count: number;
  first: string;
  last: string;
  statuses: Record<string, number>;
  rules: Record<string, number>;
  /**
   * The first failure counted, as its own (bounded) row would have been: kept bounded from the
   * start, so thousands of addresses' samples stay small.
   */
  sample: AuditEventInput;
  intervalSeconds: number;
}

/**
 * Which addresses share a bucket: an IPv4 address (an IPv4-mapped IPv6 one too) alone, an IPv6
 * address by its /64, which one host is commonly given whole.
 */
export function addressGroup(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perMs: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Refilled to its burst: as good as a new one, so it need not be kept. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.burst;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.last) * this.perMs);
    this.last = now;
  }
}

/** The admission decisions and the aggregates; no I/O (the endpoint writes and schedules). */
export class FailureLimiter {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly global: TokenBucket;
  private aggregates = new Map<string, FailureAggregate>();

  constructor(
    private readonly limits: FailureAuditLimits,
    private readonly now: () => number = Date.now,
    private readonly maxAddresses = MAX_TRACKED_ADDRESSES,
  ) {
    this.global = new TokenBucket(limits.burst * GLOBAL_FACTOR, (limits.perMinute * GLOBAL_FACTOR) / 60_000, now());
  }

  /**
   * True: write this failure's own row. False: it was counted into its address's aggregate for
   * this interval instead.
   */
  admit(ip: string, failure: FailureClass, record: RequestAuditRecord): boolean {
    const now = this.now();
    const group = addressGroup(ip);
    let bucket = this.buckets.get(group);
    if (bucket) this.buckets.delete(group);
    else bucket = new TokenBucket(this.limits.burst, this.limits.perMinute / 60_000, now);
    // Re-inserted: the Map's order is least recently seen first, the one forgotten when full.
    this.buckets.set(group, bucket);
    if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
    // The address's own budget first: one noisy address does not spend the others' shared one.
    if (bucket.take(now) && this.global.take(now)) return true;
    this.count(group, failure, record, now);
    return false;
  }

  /** The aggregates of the interval now ending, oldest first; a new interval starts empty. */
  drain(): FailureAggregate[] {
    const out = [...this.aggregates.values()];
    this.aggregates = new Map();
    const now = this.now();
    for (const [group, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(group);
    return out;
  }

  private count(group: string, failure: FailureClass, record: RequestAuditRecord, now: number): void {
    const agentId = record.agent?.id ?? '';
    let key = `${group}\u0000${failure}\u0000${agentId}`;
    let aggregate = this.aggregates.get(key);
    if (!aggregate && this.aggregates.size >= this.maxAddresses) {
      // Too many addresses this interval: the rest share one row rather than grow the map.
      key = `*\u0000${failure}`;
      aggregate = this.aggregates.get(key);
      group = '*';
    }
    const time = new Date(now).toISOString();
    if (!aggregate) {
      aggregate = { address: group, failure, agent: group === '*' ? null : record.agent, count: 0, first: time, last: time, statuses: {}, rules: {}, sample: requestAuditEvent(record), intervalSeconds: this.limits.intervalSeconds };
      this.aggregates.set(key, aggregate);
    }
    aggregate.count++;
    aggregate.last = time;
    const status = String(record.status);
    aggregate.statuses[status] = (aggregate.statuses[status] ?? 0) + 1;
    aggregate.rules[record.rule] = (aggregate.rules[record.rule] ?? 0) + 1;
  }
}

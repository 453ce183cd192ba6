// The failure limiter alone, on a fake clock: the burst, the refill, the IPv6 /64 grouping, the
// cap over all addresses and the aggregates an interval ends with.
import { describe, expect, it } from 'vitest';
import { addressGroup, FailureLimiter } from './failure-audit.js';
import type { RequestAuditRecord } from './ports.js';

function failure(source: string, status = 401, rule = 'authentication'): RequestAuditRecord {
  return {
    time: new Date(0).toISOString(),
    agent: null,
    source,
    method: 'GET',
    path: '/api',
    request: null,
    decision: 'deny',
    rule,
    policyHash: null,
    approvalId: null,
    sessionId: null,
    outcome: null,
    outcomeDetail: null,
    status,
    bytesIn: 0,
    bytesOut: 0,
    durationMs: 0,
    hints: {},
    failure: 'unauthenticated',
  };
}

describe('addressGroup', () => {
  it('keeps an IPv4 address (mapped or not) and groups IPv6 by its /64', () => {
    expect(addressGroup('10.1.2.3')).toBe('10.1.2.3');
    expect(addressGroup('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressGroup('2001:db8:0:1:aaaa::1')).toBe('2001:db8:0:1::/64');
    expect(addressGroup('2001:0db8:0000:0001:ffff:1:2:3')).toBe('2001:db8:0:1::/64');
    expect(addressGroup('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressGroup('::1')).toBe('0:0:0:0::/64');
  });
});

describe('FailureLimiter', () => {
  it('writes the burst in full, then one per refill, and counts the rest into one aggregate per address', () => {
    let now = 1_000_000;
    const limiter = new FailureLimiter({ burst: 3, perMinute: 6, intervalSeconds: 60 }, () => now);
    const admitted = Array.from({ length: 10 }, () => limiter.admit('10.0.0.1', 'unauthenticated', failure('10.0.0.1:1')));
    expect(admitted).toEqual([true, true, true, false, false, false, false, false, false, false]);
    // Another address has its own bucket.
    expect(limiter.admit('10.0.0.2', 'unauthenticated', failure('10.0.0.2:1'))).toBe(true);
    now += 10_000; // 6 a minute: one token every 10 s
    expect(limiter.admit('10.0.0.1', 'unauthenticated', failure('10.0.0.1:2'))).toBe(true);
    expect(limiter.admit('10.0.0.1', 'unauthenticated', failure('10.0.0.1:3', 400, 'unclassifiable:x'))).toBe(false);
    const [aggregate, ...rest] = limiter.drain();
    expect(rest).toEqual([]);
    expect(aggregate).toMatchObject({
      address: '10.0.0.1',
      failure: 'unauthenticated',
      count: 8,
      first: new Date(1_000_000).toISOString(),
      last: new Date(1_010_000).toISOString(),
      statuses: { 401: 7, 400: 1 },
      rules: { authentication: 7, 'unclassifiable:x': 1 },
    });
    expect(aggregate!.sample.source).toBe('10.0.0.1:1');
    expect(limiter.drain()).toEqual([]);
  });

  it('caps all addresses together at ten times one address', () => {
    const limiter = new FailureLimiter({ burst: 1, perMinute: 0, intervalSeconds: 60 }, () => 0);
    const admitted = Array.from({ length: 15 }, (_, i) => limiter.admit(`10.0.1.${i}`, 'unauthenticated', failure(`10.0.1.${i}:1`)));
    expect(admitted.filter(Boolean).length).toBe(10);
    expect(limiter.drain().map((a) => [a.address, a.count])).toEqual([10, 11, 12, 13, 14].map((i) => [`10.0.1.${i}`, 1]));
  });

  it('shares one overflow aggregate once too many addresses have one', () => {
    const limiter = new FailureLimiter({ burst: 0, perMinute: 0, intervalSeconds: 60 }, () => 0, 2);
    for (let i = 0; i < 5; i++) limiter.admit(`10.0.2.${i}`, 'unauthenticated', failure(`10.0.2.${i}:1`));
    expect(limiter.drain().map((a) => [a.address, a.count])).toEqual([
      ['10.0.2.0', 1],
      ['10.0.2.1', 1],
      ['*', 3],
    ]);
  });
});

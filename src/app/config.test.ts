// serve's --owner-may-approve: nobody by default, a comma list of the deciding roles otherwise,
// and a refusal naming the flag for anything else.
import { describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { parseServeConfig } from './config.js';

describe('--owner-may-approve', () => {
  it('is nobody by default and takes the deciding roles', () => {
    expect(parseServeConfig([]).ownerMayApprove).toEqual([]);
    expect(parseServeConfig(['--owner-may-approve', 'nobody']).ownerMayApprove).toEqual([]);
    expect(parseServeConfig(['--owner-may-approve', 'admin']).ownerMayApprove).toEqual(['admin']);
    expect(parseServeConfig(['--owner-may-approve', 'approver, admin,admin']).ownerMayApprove).toEqual(['approver', 'admin']);
  });

  it('refuses a role that does not decide, naming the flag', () => {
    let err: unknown;
    try {
      parseServeConfig(['--owner-may-approve', 'reviewer']);
    } catch (e) {
      err = e;
    }
    expect(isBastionError(err, 'USAGE')).toBe(true);
    expect((err as Error).message).toBe('--owner-may-approve: "reviewer" is not a role that decides approvals; give nobody or a comma list of approver, admin');
  });
});

describe('--audit-failure-burst, --audit-failure-rate, --audit-failure-interval', () => {
  it('default to 10 rows, then 6 a minute, per address, aggregated per minute', () => {
    expect(parseServeConfig([]).auditFailures).toEqual({ burst: 10, perMinute: 6, intervalSeconds: 60 });
    expect(parseServeConfig(['--audit-failure-burst', '0', '--audit-failure-rate', '120', '--audit-failure-interval', '5']).auditFailures).toEqual({ burst: 0, perMinute: 120, intervalSeconds: 5 });
  });

  it('refuses what is not a whole number in range, naming the flag', () => {
    expect(() => parseServeConfig(['--audit-failure-interval', '0'])).toThrow('--audit-failure-interval: expected a whole number from 1 to 3600, got "0"');
    expect(() => parseServeConfig(['--audit-failure-rate', '1.5'])).toThrow('--audit-failure-rate: expected a whole number from 0 to 600000, got "1.5"');
  });
});

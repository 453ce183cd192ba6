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

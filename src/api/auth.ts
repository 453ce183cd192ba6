// Control-endpoint authentication: bearer user tokens and role checks.
import type { IncomingMessage } from 'node:http';
import { BastionError, ErrorCode } from '../errors/index.js';
import type { User, UserRole, UserStore } from '../store/types.js';

export { ADMIN, ANY_ROLE, DECIDERS, READERS } from './contract.js';

export type Authenticate = (req: IncomingMessage, roles: readonly UserRole[]) => Promise<User>;

export function userAuthenticator(users: UserStore): Authenticate {
  return async (req, roles) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new BastionError(ErrorCode.UNAUTHENTICATED, 'send Authorization: Bearer <user token> (kube-bastion user add NAME --role ROLE)');
    const user = await users.authenticateUser(m[1]!);
    if (!user) throw new BastionError(ErrorCode.UNAUTHENTICATED, 'unknown or disabled user token');
    if (!roles.includes(user.role)) throw new BastionError(ErrorCode.FORBIDDEN, `role ${user.role} may not do this (needs ${roles.join(' or ')})`);
    return user;
  };
}

// Control-endpoint authentication: bearer user tokens and role checks.
import type { IncomingMessage } from 'node:http';
import type { User, UserRole, UserStore } from '../store/types.js';
import { USER_ROLES } from '../store/types.js';
import { ApiProblem } from './http.js';

export const ANY_ROLE: readonly UserRole[] = USER_ROLES;
export const ADMIN: readonly UserRole[] = ['admin'];
export const READERS: readonly UserRole[] = ['reviewer', 'admin', 'approver'];
export const DECIDERS: readonly UserRole[] = ['approver', 'admin'];

export type Authenticate = (req: IncomingMessage, roles: readonly UserRole[]) => Promise<User>;

export function userAuthenticator(users: UserStore): Authenticate {
  return async (req, roles) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new ApiProblem(401, 'UNAUTHENTICATED', 'send Authorization: Bearer <user token> (kube-bastion user add NAME --role ROLE)');
    const user = await users.authenticateUser(m[1]!);
    if (!user) throw new ApiProblem(401, 'UNAUTHENTICATED', 'unknown or disabled user token');
    if (!roles.includes(user.role)) throw new ApiProblem(403, 'FORBIDDEN', `role ${user.role} may not do this (needs ${roles.join(' or ')})`);
    return user;
  };
}

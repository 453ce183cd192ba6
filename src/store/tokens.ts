// Bearer tokens and identity names, shared by agents and users.
//
// A token is a recognisable prefix plus 32 random bytes in base64url (43 characters). Only its
// SHA-256 (hex) is stored; authentication hashes the presented token and looks the hash up, so the
// secret itself is never compared, and the final equality check is constant-time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidField } from '../errors/index.js';

export const AGENT_TOKEN_PREFIX = 'kba_';
export const USER_TOKEN_PREFIX = 'kbu_';

const TOKEN_BYTES = 32;
/** base64url length of 32 bytes, no padding */
const TOKEN_BODY_LENGTH = 43;
const TOKEN_BODY = /^[A-Za-z0-9_-]{43}$/;

export function generateToken(prefix: string): string {
  return prefix + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** SHA-256 (hex) of the token's UTF-8 bytes: the only form a token is stored in. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** True when `token` has the shape of a token with this prefix (says nothing about validity). */
export function looksLikeToken(token: string, prefix: string): boolean {
  return (
    typeof token === 'string' &&
    token.length === prefix.length + TOKEN_BODY_LENGTH &&
    token.startsWith(prefix) &&
    TOKEN_BODY.test(token.slice(prefix.length))
  );
}

/** Constant-time equality of two hex digests of equal length. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
export const MAX_NAME_LENGTH = 63;

/**
 * Identity names are DNS labels (RFC 1123): lower-case letters, digits and '-', starting and
 * ending with a letter or digit, at most 63 characters. They appear in audit rows, recordings,
 * `Impersonate-User` and file names, so nothing else is allowed.
 */
export function validateName(kind: 'agent' | 'user', name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw invalidField('name', `${kind} name is required`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw invalidField('name', `${kind} name ${JSON.stringify(name.slice(0, 80))} is too long (${name.length} characters, at most ${MAX_NAME_LENGTH})`);
  }
  if (!NAME.test(name)) {
    throw invalidField('name', `${kind} name ${JSON.stringify(name)} is invalid: use lower-case letters, digits and '-', ` +
        `starting and ending with a letter or digit (a DNS label, e.g. "ci-bot-1")`);
  }
  if (UUID.test(name)) {
    // Ids are UUIDs and lookups accept "name or id": a UUID-shaped name could pose as another identity.
    throw invalidField('name', `${kind} name ${JSON.stringify(name)} is invalid: it looks like an id (UUID)`, {});
  }
  return name;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

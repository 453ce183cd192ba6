// The bastion's Ed25519 signing key: it signs evidence manifests so a reviewer can tell an export
// came from this bastion and was not changed since.
//
//   <dataDir>/signing/ed25519.key   PKCS#8 PEM, mode 0600 (the directory 0700)
//   <dataDir>/signing/ed25519.pub   SPKI PEM (public; hand it to reviewers to pin with verify --key)
//
// Created on first use. Creation is race-free: the key is written to a temporary file and linked
// into place, so two processes starting at once end up with the same key. The key id is the first
// 16 hex characters of sha256 over the public key's SPKI DER; the fingerprint, what people pin, is
// `SHA256:` and the unpadded base64 of that whole digest (as ssh-keygen -l writes them).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BastionError, ErrorCode } from '../errors/index.js';

export const SIGNING_DIR = 'signing';
export const PRIVATE_KEY_FILE = 'ed25519.key';
export const PUBLIC_KEY_FILE = 'ed25519.pub';

export interface SigningKey {
  /** sha256 of the SPKI DER, hex, first 16 characters. */
  readonly keyId: string;
  /** SPKI PEM. */
  readonly publicKeyPem: string;
  /** `SHA256:<base64>` of the SPKI DER (see fingerprintOf). */
  readonly fingerprint: string;
  /** Ed25519 signature (64 bytes) over exactly these bytes. */
  sign(data: Uint8Array): Buffer;
}

/** A key, or a function giving one on first use (so the file is only created when needed). */
export type SigningKeySource = SigningKey | (() => SigningKey);

export function resolveSigningKey(source: SigningKeySource): SigningKey {
  return typeof source === 'function' ? source() : source;
}

export function signingKeyPaths(dataDir: string): { dir: string; privateKey: string; publicKey: string } {
  const dir = join(dataDir, SIGNING_DIR);
  return { dir, privateKey: join(dir, PRIVATE_KEY_FILE), publicKey: join(dir, PUBLIC_KEY_FILE) };
}

/** A public key (SPKI PEM, or a private key PEM whose public half is taken) as an Ed25519 KeyObject. */
export function publicKeyFromPem(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new BastionError(ErrorCode.BAD_REQUEST, `not a PEM public key: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new BastionError(ErrorCode.BAD_REQUEST, `not an Ed25519 key (${key.asymmetricKeyType ?? 'unknown type'})`);
  return key;
}

export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? publicKeyFromPem(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

/** `SHA256:` + unpadded base64 of sha256 over the SPKI DER: the form people compare and pin. */
export function fingerprintOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? publicKeyFromPem(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

/** `SHA256:` and 43 base64 characters. */
export const FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9+/]{43}$/;

export function verifySignature(publicKey: KeyObject | string, data: Uint8Array, signature: Uint8Array): boolean {
  const key = typeof publicKey === 'string' ? publicKeyFromPem(publicKey) : publicKey;
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** A signing key over a private KeyObject (tests build throwaway ones with this). */
export function signingKeyFrom(privateKey: KeyObject): SigningKey {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new BastionError(ErrorCode.CONFIG_INVALID, 'the signing key must be Ed25519');
  const publicKey = createPublicKey(privateKey);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return { keyId: keyIdOf(publicKey), publicKeyPem, fingerprint: fingerprintOf(publicKey), sign: (data) => sign(null, data, privateKey) };
}

export function generateSigningKey(): SigningKey {
  return signingKeyFrom(generateKeyPairSync('ed25519').privateKey);
}

/**
 * The bastion's key from `<dataDir>/signing/`, created on first use. Refuses a private key file
 * that group or others can read, or one that is not an Ed25519 PKCS#8 PEM.
 */
export function loadOrCreateSigningKey(dataDir: string): SigningKey {
  const paths = signingKeyPaths(dataDir);
  if (!existsSync(paths.privateKey)) create(paths);
  const mode = statSync(paths.privateKey).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new BastionError(
      ErrorCode.CONFIG_INVALID,
      `${paths.privateKey} is readable by others (mode ${mode.toString(8).padStart(4, '0')}); chmod 600 it (or delete it to make a new key)`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(paths.privateKey, 'utf8'));
  } catch (err) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `${paths.privateKey}: not a PEM private key (${(err as Error).message})`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `${paths.privateKey}: not an Ed25519 key (${privateKey.asymmetricKeyType ?? 'unknown type'})`);
  }
  const key = signingKeyFrom(privateKey);
  // The public file is derived: (re)write it when missing or not matching the private key.
  let current: string | undefined;
  try {
    current = readFileSync(paths.publicKey, 'utf8');
  } catch {
    current = undefined;
  }
  if (current !== key.publicKeyPem) writeFileSync(paths.publicKey, key.publicKeyPem, { mode: 0o644 });
  return key;
}

/** The key loaded on first call (and created then if it does not exist yet). */
export function lazySigningKey(dataDir: string): () => SigningKey {
  let key: SigningKey | undefined;
  return () => (key ??= loadOrCreateSigningKey(dataDir));
}

function create(paths: { dir: string; privateKey: string }): void {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${paths.privateKey}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, pem, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  try {
    linkSync(tmp, paths.privateKey);
  } catch (err) {
    // Another process created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}

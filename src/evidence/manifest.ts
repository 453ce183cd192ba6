// The evidence manifest: every exported file with its size and SHA-256, signed with the bastion's
// Ed25519 key (manifest.sig: base64 of the signature over the exact bytes of manifest.json, one
// line). Verification recomputes everything and names every file that does not match.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fingerprintOf, keyIdOf, publicKeyFromPem, verifySignature, type SigningKey } from './signing-key.js';
import { AUDIT_IN_BUNDLE, CHECKPOINTS_IN_BUNDLE, checkBundleCheckpoints } from './bundle-checkpoints.js';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.sig';
export const MANIFEST_FORMAT = 'kube-bastion-evidence';
export const MANIFEST_VERSION = 1;

import type { CastFormat } from '../model/vocabulary.js';
export type { CastFormat };

/** What was exported. */
export type EvidenceSubject =
  | { kind: 'approval'; approvalId: string }
  | { kind: 'session'; sessionId: string; approvalId: string | null }
  | { kind: 'since'; since: string; until: string | null };

export interface ManifestFile {
  /** `/`-separated, relative to the evidence directory. */
  path: string;
  size: number;
  /** sha256 (hex) of the exported file. */
  sha256: string;
}

/**
 * Something the bastion found wrong while exporting (a recording whose bytes no longer match the
 * hash recorded at session end, a recording file that is gone). Signed with the rest; verify
 * reports each one, so such evidence never verifies clean.
 */
export interface ManifestProblem {
  kind: 'MISMATCH' | 'MISSING';
  path: string;
  message: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  createdAt: string;
  key: { id: string; algorithm: 'Ed25519'; publicKeyPem: string };
  subject: EvidenceSubject;
  /** The asciicast version of the exported casts; null: each as recorded. */
  castFormat: CastFormat | null;
  files: ManifestFile[];
  problems: ManifestProblem[];
}

export function buildManifest(input: {
  createdAt: Date;
  key: Pick<SigningKey, 'keyId' | 'publicKeyPem'>;
  subject: EvidenceSubject;
  castFormat: CastFormat | null;
  files: ManifestFile[];
  problems?: ManifestProblem[];
}): Manifest {
  return {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    createdAt: input.createdAt.toISOString(),
    key: { id: input.key.keyId, algorithm: 'Ed25519', publicKeyPem: input.key.publicKeyPem },
    subject: input.subject,
    castFormat: input.castFormat,
    files: [...input.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    problems: [...(input.problems ?? [])].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
}

/** The exact bytes of manifest.json (what the signature covers). */
export function encodeManifest(m: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(m, null, 2)}\n`, 'utf8');
}

/** The exact bytes of manifest.sig: base64 of the signature and a newline. */
export function signManifest(manifestBytes: Uint8Array, key: SigningKey): Buffer {
  return Buffer.from(`${key.sign(manifestBytes).toString('base64')}\n`, 'ascii');
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Verification

export type ProblemKind = 'MISMATCH' | 'MISSING' | 'UNEXPECTED' | 'BAD SIGNATURE' | 'UNTRUSTED KEY' | 'INVALID';

export interface VerifyProblem {
  kind: ProblemKind;
  /** `/`-separated path relative to the evidence directory. */
  path: string;
  message?: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Files the manifest lists. */
  files: number;
  /** The key the manifest names (undefined when it cannot be read). */
  keyId?: string;
  /** Its fingerprint (`SHA256:...`), when there is a usable key. */
  fingerprint?: string;
  /** Signed audit checkpoints in the bundle that were checked against its audit rows. */
  checkpoints?: number;
  manifest?: Manifest;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /** A pinned public key (SPKI PEM, or the bastion's ed25519.pub): the manifest must be signed by it. */
  publicKeyPem?: string;
  /**
   * Pinned fingerprints (`SHA256:...`): the key that signed the manifest must be one of them. With
   * `requirePinned`, a bundle whose key nothing pins fails (it is only self-certified).
   */
  trustedFingerprints?: readonly string[];
  /** Where the pins come from, for the message (`--fingerprint`, a trust file's path). */
  trustedFrom?: string;
  /** Fail unless `publicKeyPem` or `trustedFingerprints` vouch for the key (kube-bastion verify). */
  requirePinned?: boolean;
}

/** One line per problem, e.g. `MISMATCH sessions/ses_x.cast: sha256 ab... (manifest: cd...)`. */
export function formatProblem(p: VerifyProblem): string {
  return `${p.kind} ${p.path}${p.message ? `: ${p.message}` : ''}`;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** 64 signature bytes in canonical base64 and one newline. */
const SIGNATURE_TEXT = /^[A-Za-z0-9+/]{86}==\n$/;

function safeRelativePath(p: string): boolean {
  return (
    p !== '' &&
    !p.startsWith('/') &&
    !p.includes('\\') &&
    !p.includes('\0') &&
    p.split('/').every((part) => part !== '' && part !== '.' && part !== '..') &&
    p !== MANIFEST_FILE &&
    p !== SIGNATURE_FILE
  );
}

/** Why this value is not a manifest, or undefined when it is one. */
function manifestShapeError(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const m = v as Record<string, unknown>;
  if (m['format'] !== MANIFEST_FORMAT) return `"format" is not ${JSON.stringify(MANIFEST_FORMAT)}`;
  if (m['version'] !== MANIFEST_VERSION) return `unsupported "version" ${JSON.stringify(m['version'])} (this verifier reads ${MANIFEST_VERSION})`;
  const key = m['key'] as Record<string, unknown> | undefined;
  if (typeof key !== 'object' || key === null || typeof key['id'] !== 'string' || typeof key['publicKeyPem'] !== 'string') return '"key" must have "id" and "publicKeyPem"';
  if (!Array.isArray(m['files'])) return '"files" must be an array';
  const seen = new Set<string>();
  for (const [i, f] of (m['files'] as unknown[]).entries()) {
    const file = f as Record<string, unknown> | null;
    if (typeof file !== 'object' || file === null) return `files[${i}] is not an object`;
    if (typeof file['path'] !== 'string' || !safeRelativePath(file['path'])) return `files[${i}].path ${JSON.stringify(file['path'])} is not a safe relative path`;
    if (!Number.isSafeInteger(file['size']) || (file['size'] as number) < 0) return `files[${i}].size must be a whole number`;
    if (typeof file['sha256'] !== 'string' || !SHA256_HEX.test(file['sha256'])) return `files[${i}].sha256 must be 64 lowercase hex characters`;
    if (seen.has(file['path'])) return `${file['path']} is listed twice`;
    seen.add(file['path']);
  }
  if (m['problems'] !== undefined && !Array.isArray(m['problems'])) return '"problems" must be an array';
  return undefined;
}

async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    size += chunk.length;
    hash.update(chunk);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Every non-directory under `dir`, as `/`-separated relative paths (symlinks are not followed). */
async function walk(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await walk(join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}

/** The public key PEM in a manifest's text that is not (or no longer) valid JSON. */
function publicKeyInText(text: string): string | undefined {
  const m = /"publicKeyPem"\s*:\s*("-----BEGIN PUBLIC KEY-----[^"]*-----END PUBLIC KEY-----\\n")/.exec(text);
  if (!m) return undefined;
  try {
    return JSON.parse(m[1]!) as string;
  } catch {
    return undefined;
  }
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Checks an evidence directory: the signature over manifest.json (with the key the manifest names,
 * and with the pinned key when one is given), every listed file's size and SHA-256, files missing
 * or not listed, and the problems the bastion itself recorded at export time.
 */
export async function verifyEvidenceDir(dir: string, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const problems: VerifyProblem[] = [];
  const manifestBytes = await readOptional(join(dir, MANIFEST_FILE));
  const sigBytes = await readOptional(join(dir, SIGNATURE_FILE));
  if (manifestBytes === undefined) problems.push({ kind: 'MISSING', path: MANIFEST_FILE, message: 'not an evidence directory (no manifest)' });
  if (sigBytes === undefined) problems.push({ kind: 'MISSING', path: SIGNATURE_FILE, message: 'the manifest is not signed' });
  if (manifestBytes === undefined) return { ok: false, files: 0, problems };

  // What the manifest says (checked for shape), reported after the signature.
  const invalid: VerifyProblem[] = [];
  let manifest: Manifest | undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    invalid.push({ kind: 'INVALID', path: MANIFEST_FILE, message: 'not valid JSON' });
  }
  if (parsed !== undefined) {
    const why = manifestShapeError(parsed);
    if (why) invalid.push({ kind: 'INVALID', path: MANIFEST_FILE, message: why });
    else manifest = parsed as Manifest;
  }

  // The key: the pinned one, else the one the manifest carries (found in the text even when a
  // changed byte broke the JSON, so the verdict is still "the signature does not match").
  const manifestKeyPem = manifest?.key.publicKeyPem ?? publicKeyInText(manifestBytes.toString('utf8'));
  let manifestKeyId: string | undefined;
  if (manifestKeyPem !== undefined) {
    try {
      manifestKeyId = keyIdOf(manifestKeyPem);
    } catch (err) {
      if (manifest) invalid.push({ kind: 'INVALID', path: MANIFEST_FILE, message: `the public key it carries is unusable: ${(err as Error).message}` });
    }
  }
  if (manifest && manifestKeyId !== undefined && manifestKeyId !== manifest.key.id) {
    invalid.push({ kind: 'INVALID', path: MANIFEST_FILE, message: `key id ${manifest.key.id} is not the id of the public key it carries (${manifestKeyId})` });
  }
  let pinnedKeyId: string | undefined;
  if (opts.publicKeyPem !== undefined) pinnedKeyId = keyIdOf(publicKeyFromPem(opts.publicKeyPem));
  const keyPem = opts.publicKeyPem ?? (manifestKeyId !== undefined ? manifestKeyPem : undefined);
  const keyId = pinnedKeyId ?? manifestKeyId;

  // The signature.
  if (sigBytes !== undefined) {
    const sigText = sigBytes.toString('latin1');
    const signature = SIGNATURE_TEXT.test(sigText) ? Buffer.from(sigText.slice(0, -1), 'base64') : undefined;
    if (signature === undefined || `${signature.toString('base64')}\n` !== sigText || signature.length !== 64) {
      problems.push({ kind: 'BAD SIGNATURE', path: SIGNATURE_FILE, message: 'not a base64 Ed25519 signature on one line' });
    } else if (keyPem === undefined) {
      problems.push({ kind: 'BAD SIGNATURE', path: MANIFEST_FILE, message: 'cannot check the signature: no usable public key in the manifest (pass --key)' });
    } else if (!verifySignature(keyPem, manifestBytes, signature)) {
      const other = pinnedKeyId !== undefined && manifestKeyId !== undefined && manifestKeyId !== pinnedKeyId;
      problems.push({
        kind: 'BAD SIGNATURE',
        path: MANIFEST_FILE,
        message: `${SIGNATURE_FILE} is not a signature of these bytes by key ${keyId}${other ? ` (the pinned key; the manifest names key ${manifestKeyId})` : ''}`,
      });
    }
  }
  if (pinnedKeyId !== undefined && manifest && manifest.key.id !== pinnedKeyId) {
    const named = manifestKeyPem !== undefined && manifestKeyId !== undefined ? fingerprintOf(manifestKeyPem) : manifest.key.id;
    problems.push({ kind: 'UNTRUSTED KEY', path: MANIFEST_FILE, message: `the bundle is signed by key ${named} which is not the bastion's pinned key ${fingerprintOf(opts.publicKeyPem!)}` });
  }
  const fingerprint = keyPem !== undefined ? fingerprintOf(keyPem) : undefined;
  const untrusted = trustProblem(fingerprint, opts);
  if (untrusted) problems.push(untrusted);
  problems.push(...invalid);

  if (!manifest) return { ok: false, files: 0, ...(keyId !== undefined ? { keyId } : {}), problems };

  // The files.
  const listed = new Set<string>();
  for (const f of manifest.files) {
    listed.add(f.path);
    const full = join(dir, ...f.path.split('/'));
    let st;
    try {
      st = await lstat(full);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
      problems.push({ kind: 'MISSING', path: f.path });
      continue;
    }
    if (!st.isFile()) {
      problems.push({ kind: 'MISMATCH', path: f.path, message: 'not a regular file' });
      continue;
    }
    const actual = await hashFile(full);
    if (actual.size !== f.size || actual.sha256 !== f.sha256) {
      const parts: string[] = [];
      if (actual.sha256 !== f.sha256) parts.push(`sha256 ${actual.sha256} (manifest: ${f.sha256})`);
      if (actual.size !== f.size) parts.push(`size ${actual.size} bytes (manifest: ${f.size})`);
      problems.push({ kind: 'MISMATCH', path: f.path, message: parts.join(', ') });
    }
  }
  // Signed audit checkpoints against the bundle's audit rows, with the key that signed the manifest.
  let checkpoints: number | undefined;
  if (keyPem !== undefined && listed.has(CHECKPOINTS_IN_BUNDLE)) {
    const checked = await checkBundleCheckpoints(dir, keyPem, listed.has(AUDIT_IN_BUNDLE));
    problems.push(...checked.problems);
    checkpoints = checked.checkpoints;
  }
  for (const rel of (await walk(dir)).sort()) {
    if (rel === MANIFEST_FILE || rel === SIGNATURE_FILE || listed.has(rel)) continue;
    problems.push({ kind: 'UNEXPECTED', path: rel, message: 'not listed in the manifest' });
  }
  // What the bastion found wrong when it exported.
  for (const p of manifest.problems ?? []) {
    const kind = p.kind === 'MISSING' ? 'MISSING' : 'MISMATCH';
    problems.push({ kind, path: String(p.path), message: `at export: ${String(p.message)}` });
  }
  return {
    ok: problems.length === 0,
    files: manifest.files.length,
    keyId: keyId ?? manifest.key.id,
    ...(fingerprint !== undefined ? { fingerprint } : {}),
    ...(checkpoints !== undefined ? { checkpoints } : {}),
    manifest,
    problems,
  };
}

/**
 * A signature proves who signed only when the signer's key is known beforehand: a bundle re-signed
 * with a new key carries that key and verifies against it. So the key must be pinned.
 */
function trustProblem(fingerprint: string | undefined, opts: VerifyOptions): VerifyProblem | undefined {
  if (fingerprint === undefined || opts.publicKeyPem !== undefined) return undefined;
  const pins = opts.trustedFingerprints ?? [];
  if (pins.includes(fingerprint)) return undefined;
  if (pins.length > 0) {
    return {
      kind: 'UNTRUSTED KEY',
      path: MANIFEST_FILE,
      message: `the bundle is signed by key ${fingerprint} which is not the bastion's pinned key (pinned: ${pins.join(', ')}${opts.trustedFrom ? `, from ${opts.trustedFrom}` : ''})`,
    };
  }
  if (!opts.requirePinned) return undefined;
  return {
    kind: 'UNTRUSTED KEY',
    path: MANIFEST_FILE,
    message:
      `the bundle is signed by key ${fingerprint}, which only the bundle itself vouches for: no bastion key is pinned${opts.trustedFrom ? ` (${opts.trustedFrom} has none)` : ''}; ` +
      "pin the bastion's key with --key FILE or --fingerprint SHA256:... (GET /v1/signing-key, the serve banner)",
  };
}

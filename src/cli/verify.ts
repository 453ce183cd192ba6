// `kube-bastion verify DIR [--key PEM | --fingerprint SHA256:...] [--trust-file FILE]`: checks an
// evidence directory written by `export`.
//
// Recomputes the SHA-256 and size of every file the manifest lists, finds files missing or not
// listed, checks the Ed25519 signature over manifest.json, the signed audit checkpoints against the
// bundle's audit rows, and that the key that signed is the bastion's: a signature by the key the
// manifest itself carries proves nothing (anyone can re-sign an edited bundle with a new key), so
// the key must be pinned. The pin is --key (the bastion's ed25519.pub), --fingerprint (as GET
// /v1/signing-key and the serve banner publish it), or else the trust file, which a verify with
// --key or --fingerprint writes on first use:
//
//   $XDG_CONFIG_HOME/kube-bastion/trusted-keys   (default ~/.config/kube-bastion/trusted-keys)
//   one fingerprint per line, optionally followed by a comment; # starts a comment line
//
// Prints `OK: N files, signed by key ID (SHA256:...)`, or one line per problem:
//
//   MISMATCH sessions/ses_x.cast: sha256 ... (manifest: ...)
//   MISSING sessions/ses_x.raw
//   UNEXPECTED notes.txt: not listed in the manifest
//   BAD SIGNATURE manifest.json: ...
//   UNTRUSTED KEY manifest.json: the bundle is signed by key SHA256:... which is not the bastion's pinned key ...
//
// Exit status: 0 verified, 1 anything does not match (or the key is not pinned), 2 usage.
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import { formatProblem, verifyEvidenceDir } from '../evidence/manifest.js';
import { FINGERPRINT_PATTERN, publicKeyFromPem } from '../evidence/signing-key.js';

export const VERIFY_USAGE = `usage: kube-bastion verify DIR [--key PEM | --fingerprint SHA256:...] [--trust-file FILE]

Checks an evidence directory written by "kube-bastion export": every file's size and SHA-256 against
the manifest, files missing or not listed, the Ed25519 signature over the manifest, the bastion's
signed audit checkpoints against the bundle's audit rows, and that the signing key is the bastion's
pinned key (a bundle signed only by the key it carries itself fails).

options:
  --key PEM              the bastion's public key (GET /v1/signing-key, or its <data-dir>/signing/ed25519.pub)
  --fingerprint SHA256:...
                         the bastion's key fingerprint (the serve banner, GET /v1/signing-key)
  --trust-file FILE      the pinned fingerprints (default $XDG_CONFIG_HOME/kube-bastion/trusted-keys,
                         else ~/.config/kube-bastion/trusted-keys); a verify with --key or --fingerprint
                         that passes adds the key to it, so later ones need neither`;

/** Where pinned fingerprints are kept unless --trust-file says otherwise. */
export function defaultTrustFile(env: Record<string, string | undefined> = process.env): string {
  const base = env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config');
  return join(base, 'kube-bastion', 'trusted-keys');
}

/** The fingerprints a trust file pins (none when it does not exist). */
export function readTrustFile(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((f) => FINGERPRINT_PATTERN.test(f));
}

export interface VerifyIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, `${message}\n${VERIFY_USAGE}`);
}

export async function runVerify(argv: string[], io: Partial<VerifyIo> = {}, env: Record<string, string | undefined> = process.env): Promise<number> {
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: { key: { type: 'string' }, fingerprint: { type: 'string' }, 'trust-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(`${VERIFY_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw usage(positionals.length === 0 ? 'give the evidence directory' : 'give one evidence directory');
  const dir = resolve(positionals[0]!);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usage(`${dir}: no such directory`);
  if (values.key !== undefined && values.fingerprint !== undefined) throw usage('give --key or --fingerprint, not both');
  let publicKeyPem: string | undefined;
  if (values.key !== undefined) {
    try {
      publicKeyPem = readFileSync(values.key, 'utf8');
      publicKeyFromPem(publicKeyPem);
    } catch (e) {
      throw usage(`--key ${values.key}: ${(e as Error).message}`);
    }
  }
  if (values.fingerprint !== undefined && !FINGERPRINT_PATTERN.test(values.fingerprint)) {
    throw usage(`--fingerprint ${JSON.stringify(values.fingerprint)}: expected SHA256: and 43 base64 characters, as GET /v1/signing-key gives it`);
  }
  const trustFile = values['trust-file'] !== undefined ? resolve(values['trust-file']) : defaultTrustFile(env);
  const pinned = values.fingerprint !== undefined ? [values.fingerprint] : publicKeyPem === undefined ? readTrustFile(trustFile) : [];
  const trustedFrom = values.fingerprint !== undefined ? '--fingerprint' : trustFile;
  let result;
  try {
    result = await verifyEvidenceDir(dir, { ...(publicKeyPem !== undefined ? { publicKeyPem } : {}), trustedFingerprints: pinned, trustedFrom, requirePinned: true });
  } catch (e) {
    if (isBastionError(e)) throw usage(e.message);
    throw e;
  }
  if (!result.ok) {
    for (const p of result.problems) out(`${formatProblem(p)}\n`);
    out(`FAILED: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} in ${dir}\n`);
    return 1;
  }
  const how = publicKeyPem !== undefined ? 'pinned with --key' : values.fingerprint !== undefined ? 'pinned with --fingerprint' : `pinned in ${trustFile}`;
  const checkpoints = result.checkpoints ? `; ${result.checkpoints} signed audit checkpoint${result.checkpoints === 1 ? ' agrees' : 's agree'} with its audit rows` : '';
  out(`OK: ${result.files} files, signed by key ${result.keyId} (${result.fingerprint}, ${how})${checkpoints}\n`);
  // First use of a pin: remember it, so the next verify needs no flag.
  if ((publicKeyPem !== undefined || values.fingerprint !== undefined) && result.fingerprint !== undefined && !readTrustFile(trustFile).includes(result.fingerprint)) {
    mkdirSync(dirname(trustFile), { recursive: true, mode: 0o700 });
    appendFileSync(trustFile, `${result.fingerprint} pinned ${new Date().toISOString()}${publicKeyPem !== undefined ? ` from ${resolve(values.key!)}` : ''}\n`, { mode: 0o600 });
    out(`pinned key ${result.fingerprint} in ${trustFile}: verify needs no --key or --fingerprint from now on\n`);
  }
  return 0;
}

// `kube-bastion verify DIR [--key PEM]`: checks an evidence directory written by `export`.
//
// Recomputes the SHA-256 and size of every file the manifest lists, finds files missing or not
// listed, checks the Ed25519 signature over manifest.json with the key the manifest names and, with
// --key, that the key is the pinned one (the bastion's <data-dir>/signing/ed25519.pub). Prints
// `OK: N files, signed by key ID`, or one line per problem:
//
//   MISMATCH sessions/ses_x.cast: sha256 ... (manifest: ...)
//   MISSING sessions/ses_x.raw
//   UNEXPECTED notes.txt: not listed in the manifest
//   BAD SIGNATURE manifest.json: ...
//
// Exit status: 0 verified, 1 anything does not match, 2 usage.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import { formatProblem, verifyEvidenceDir } from '../evidence/manifest.js';
import { publicKeyFromPem } from '../evidence/signing-key.js';

export const VERIFY_USAGE = `usage: kube-bastion verify DIR [--key PEM]

Checks an evidence directory written by "kube-bastion export": every file's size and SHA-256 against
the manifest, files missing or not listed, and the Ed25519 signature over the manifest.

options:
  --key PEM   the bastion's public key (its <data-dir>/signing/ed25519.pub) to pin: the manifest must
              be signed by this key, not just by the key it carries`;

export interface VerifyIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function usage(message: string): BastionError {
  return new BastionError(ErrorCode.USAGE, `${message}\n${VERIFY_USAGE}`);
}

export async function runVerify(argv: string[], io: Partial<VerifyIo> = {}): Promise<number> {
  const out = io.stdout ?? ((t: string) => void process.stdout.write(t));
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { key: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
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
  let publicKeyPem: string | undefined;
  if (values.key !== undefined) {
    try {
      publicKeyPem = readFileSync(values.key, 'utf8');
      publicKeyFromPem(publicKeyPem);
    } catch (e) {
      throw usage(`--key ${values.key}: ${(e as Error).message}`);
    }
  }
  let result;
  try {
    result = await verifyEvidenceDir(dir, publicKeyPem !== undefined ? { publicKeyPem } : {});
  } catch (e) {
    if (isBastionError(e)) throw usage(e.message);
    throw e;
  }
  if (result.ok) {
    out(`OK: ${result.files} files, signed by key ${result.keyId}${publicKeyPem !== undefined ? ' (pinned)' : ''}\n`);
    return 0;
  }
  for (const p of result.problems) out(`${formatProblem(p)}\n`);
  out(`FAILED: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'} in ${dir}\n`);
  return 1;
}

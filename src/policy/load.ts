// Read one policy version: the file's exact bytes -> sha256, validated and frozen document.
// Any problem is a CONFIG_INVALID BastionError whose message lists every issue with its line.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BastionError, ErrorCode } from '../errors/index.js';
import { BUILT_IN_POLICY_ORIGIN, DEFAULT_POLICY_YAML } from './default-policy.js';
import { formatIssues } from './issues.js';
import type { LoadedPolicy } from './schema.js';
import { validatePolicyText } from './validate.js';

export interface PolicySource {
  /** A policy file; without one, the built-in default policy. */
  path?: string;
}

/** Load and validate a policy, or throw BastionError(CONFIG_INVALID). */
export function loadPolicy(source: PolicySource = {}): LoadedPolicy {
  if (source.path === undefined) return builtInPolicy();
  let bytes: Buffer;
  try {
    bytes = readFileSync(source.path);
  } catch (err) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `cannot read policy file ${source.path}: ${(err as Error).message}`, { origin: source.path }, { cause: err });
  }
  return parsePolicy(bytes, source.path);
}

let builtIn: LoadedPolicy | undefined;

/** The built-in default policy (validated once). */
export function builtInPolicy(): LoadedPolicy {
  builtIn ??= parsePolicy(DEFAULT_POLICY_YAML, BUILT_IN_POLICY_ORIGIN);
  return builtIn;
}

/** sha256 (hex) of a policy's bytes, as recorded with every decision. */
export function policyHash(bytes: string | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Validate policy bytes (or text, hashed as UTF-8) that came from `origin`. */
export function parsePolicy(bytes: string | Uint8Array, origin: string): LoadedPolicy {
  const hash = policyHash(bytes);
  let text: string;
  if (typeof bytes === 'string') {
    text = bytes;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch (err) {
      throw new BastionError(ErrorCode.CONFIG_INVALID, `policy ${origin} is not valid UTF-8`, { origin }, { cause: err });
    }
  }
  const result = validatePolicyText(text, origin);
  if (!result.ok) {
    const n = result.issues.length;
    throw new BastionError(ErrorCode.CONFIG_INVALID, `policy ${origin} is invalid (${n} problem${n === 1 ? '' : 's'}):\n${formatIssues(result.issues, text)}`, {
      origin,
      hash,
      issues: result.issues,
    });
  }
  return Object.freeze({ document: deepFreeze(result.document), hash, text, origin });
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

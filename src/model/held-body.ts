// What an approver is shown of a held REST request's body: the JSON (or the Kubernetes protobuf, as
// far as kube-protobuf.ts reads it) pretty-printed with Secret values redacted, capped, and its
// risk summary (risk.ts). The stored hash binds the exact bytes
// forwarded; this text is only for reading, so it may be redacted and cut.
import { MAX_HELD_BODY_TEXT, type HeldRequestBody, type HeldRequestInfo, type RiskFinding, type RiskSummary } from './approval-schema.js';
import { findDuplicateKey, formatJsonPath } from './json-keys.js';
import { decodeKubeProtobuf } from './kube-protobuf.js';
import { mediaTypeOf } from './media-type.js';
import { summarizeRisk, type PatchType } from './risk.js';

export const REDACTED = '<redacted>';

/** kubectl's `apply` keeps the whole object (a Secret's values too) in this annotation. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface BodyFacts {
  contentType: string | null;
  /** The plural resource the request is for. */
  resource: string;
  /** SHA-256 (hex) of `bytes`, computed by the caller, which forwards exactly these bytes. */
  sha256: string;
}

/** A PATCH body's kind, from its Content-Type; null for anything else. */
export function patchTypeOf(contentType: string | null): PatchType | null {
  const t = mediaTypeOf(contentType);
  if (t === 'application/json-patch+json') return 'json';
  if (t === 'application/merge-patch+json') return 'merge';
  if (t === 'application/strategic-merge-patch+json') return 'strategic';
  if (t === 'application/apply-patch+yaml' || t === 'application/apply-patch+cbor') return 'apply';
  return null;
}

/** Whether a body of this Content-Type is read as text (JSON, or text shown as it is). */
function readAsText(contentType: string | null): boolean {
  // The media type alone, as the API server reads it: `application/json; x=protobuf` is JSON.
  return !/protobuf|cbor/.test(mediaTypeOf(contentType) ?? '');
}

/**
 * The body as text. A body read as text with bytes that are not UTF-8 is decoded as Go's JSON
 * decoder reads them (each invalid byte U+FFFD), so what is shown and checked is what the API
 * server reads; `lossy` says it happened.
 */
function textOf(bytes: Uint8Array, contentType: string | null): { text: string | undefined; lossy: boolean } {
  const strict = utf8(bytes);
  if (strict !== undefined || !readAsText(contentType)) return { text: strict, lossy: false };
  return { text: new TextDecoder('utf-8').decode(bytes), lossy: true };
}

/** The body parsed as JSON the way describeHeldBody reads it (any textual Content-Type; YAML that is JSON too); undefined when it is not. */
function parseJsonBody(text: string | undefined, contentType: string | null): { doc: unknown } | undefined {
  if (text === undefined || !readAsText(contentType)) return undefined;
  try {
    return { doc: JSON.parse(text) as unknown };
  } catch {
    return undefined;
  }
}

/**
 * The path of a duplicate object key (`spec`, `spec.containers[0].name`) in a body read as JSON,
 * or null. JSON.parse keeps the last of two equal keys while the API server merges them, so what
 * describeHeldBody shows is not what such a body does: the endpoint refuses it before any approval.
 */
export function duplicateJsonKey(bytes: Uint8Array, contentType: string | null): string | null {
  const { text } = textOf(bytes, contentType);
  if (parseJsonBody(text, contentType) === undefined) return null;
  const path = findDuplicateKey(text!);
  return path === null ? null : formatJsonPath(path);
}

/** The body as stored with the held request, and its risk summary. */
export function describeHeldBody(bytes: Uint8Array, facts: BodyFacts): { body: HeldRequestBody; risk: RiskSummary } {
  const secrets = facts.resource === 'secrets';
  const patch = patchTypeOf(facts.contentType);
  const base = { contentType: facts.contentType, bytes: bytes.length, sha256: facts.sha256 };
  const { text, lossy } = textOf(bytes, facts.contentType);
  let doc: unknown;
  let parsed = false;
  const notes: RiskFinding[] = [];
  if (lossy) notes.push({ level: 'high', text: 'the body has bytes that are not UTF-8: shown as U+FFFD, as the API server reads them; a client that sends such bytes is not an ordinary client' });
  const json = parseJsonBody(text, facts.contentType);
  if (json !== undefined) {
    doc = json.doc;
    parsed = true;
    // The endpoint refuses such a body; should one get here, the summary must not look complete.
    const dup = findDuplicateKey(text!);
    if (dup !== null) notes.push({ level: 'high', text: `the body repeats the key ${formatJsonPath(dup)}: the API server merges both, this summary shows only the last; do not approve` });
  } else if (/protobuf/.test(mediaTypeOf(facts.contentType) ?? '')) {
    // Typed clients (kubectl 1.33's `create secret`, `run`, ...) send protobuf: read what we can.
    const decoded = decodeKubeProtobuf(bytes);
    if (decoded) {
      doc = decoded.object;
      parsed = true;
      notes.push({ level: 'info', text: 'the body is protobuf: shown as JSON, as far as kube-bastion reads it' });
      if (decoded.partial) notes.push({ level: 'high', text: 'kube-bastion reads only the metadata of this protobuf body: its spec is not shown or summarized; decide on what you can verify' });
    }
  }
  if (!parsed) {
    // A Secret's body that cannot be read cannot be redacted: it is not shown at all.
    const shown = text !== undefined && !secrets ? cap(text) : { text: null, truncated: false };
    const why = text === undefined ? 'binary' : 'not JSON';
    const findings: RiskFinding[] = [
      ...cutNote(shown.truncated, text?.length ?? 0),
      ...notes,
      { level: 'notice', text: `the body is ${why}: no summary${shown.text === null ? ', and it is not shown' : ''}; decide on what you can verify` },
    ];
    return {
      body: { ...base, ...shown, redacted: false },
      risk: { subject: `a ${why} body (${facts.contentType ?? 'no content type'})`, patch: patch !== null, findings },
    };
  }
  const redaction = { redacted: false };
  const safe = redact(doc, secrets, patch === 'json', redaction);
  const risk = summarizeRisk(safe, { resource: facts.resource, patch });
  const pretty = JSON.stringify(safe, null, 2);
  const shown = cap(pretty);
  return {
    body: { ...base, ...shown, redacted: redaction.redacted },
    risk: { ...risk, findings: [...cutNote(shown.truncated, pretty.length), ...notes, ...risk.findings] },
  };
}

function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** A text cut at its limit hides the rest from the approver: said first, as high, with how much is not shown. */
function cutNote(truncated: boolean, length: number): RiskFinding[] {
  if (!truncated) return [];
  return [{ level: 'high', text: `the body shown is cut at ${MAX_HELD_BODY_TEXT} of ${length} characters: ${length - MAX_HELD_BODY_TEXT} characters are not shown; decide on the summary and what you can verify` }];
}

function cap(text: string): { text: string; truncated: boolean } {
  return text.length > MAX_HELD_BODY_TEXT ? { text: text.slice(0, MAX_HELD_BODY_TEXT), truncated: true } : { text, truncated: false };
}

type Obj = Record<string, unknown>;
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A copy with every Secret's values replaced: `data` and `stringData` values and the last-applied
 * annotation of any object of kind Secret, and of the top-level object of a request for secrets
 * whatever kind it claims. A JSON patch of secrets has every value replaced.
 */
function redact(doc: unknown, secrets: boolean, jsonPatch: boolean, out: { redacted: boolean }): unknown {
  if (secrets && jsonPatch && Array.isArray(doc)) {
    return doc.map((op) => {
      if (!isObj(op) || !('value' in op)) return op;
      out.redacted = true;
      return { ...op, value: REDACTED };
    });
  }
  return walk(doc, secrets, out, 0);
}

/** Deeper than any Kubernetes object: cut, so a hostile body cannot exhaust the stack. */
const MAX_DEPTH = 64;

function walk(v: unknown, secretTop: boolean, out: { redacted: boolean }, depth: number): unknown {
  if (depth > MAX_DEPTH) return '<nested too deep>';
  if (Array.isArray(v)) return v.map((x) => walk(x, false, out, depth + 1));
  if (!isObj(v)) return v;
  const secretLike = secretTop || v['kind'] === 'Secret';
  const copy: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (secretLike && (k === 'data' || k === 'stringData')) copy[k] = redactValues(x, out);
    else if (secretLike && k === 'metadata') copy[k] = redactLastApplied(x, out);
    else copy[k] = walk(x, false, out, depth + 1);
  }
  return copy;
}

function redactValues(x: unknown, out: { redacted: boolean }): unknown {
  out.redacted = true;
  if (!isObj(x)) return REDACTED;
  return Object.fromEntries(Object.keys(x).map((k) => [k, REDACTED]));
}

function redactLastApplied(meta: unknown, out: { redacted: boolean }): unknown {
  const annotations = isObj(meta) ? meta['annotations'] : undefined;
  if (!isObj(meta) || !isObj(annotations) || !(LAST_APPLIED in annotations)) return meta;
  out.redacted = true;
  return { ...meta, annotations: { ...annotations, [LAST_APPLIED]: REDACTED } };
}

/**
 * A held request as audit rows carry it: the body's facts (size, type, hash) and its risk summary,
 * not its text (the approval record shows it; the hash binds the bytes), so a joined clone's row
 * stays small.
 */
export function auditedRequest(r: HeldRequestInfo): HeldRequestInfo {
  if (!r.body) return r;
  const { text: _text, ...facts } = r.body;
  return { ...r, body: { ...facts, text: null } };
}

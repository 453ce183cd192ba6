// A small, dependency-free decoder for Kubernetes protobuf request bodies (what kubectl 1.33's typed
// clients send for `create configmap|secret|namespace` and `auth can-i|whoami`), producing the JSON
// shape the API accepts.
//
// Wire layout (k8s.io/apimachinery/pkg/runtime/serializer/protobuf): the 4-byte magic "k8s\0", then a
// runtime.Unknown message:
//   Unknown  { TypeMeta typeMeta = 1; bytes raw = 2; string contentEncoding = 3; string contentType = 4; }
//   TypeMeta { string apiVersion = 1; string kind = 2; }            (runtime.TypeMeta, not meta/v1's)
// and `raw` is the object's own message (k8s.io/api/core/v1/generated.proto):
//   ConfigMap { ObjectMeta metadata = 1; map<string,string> data = 2; map<string,bytes> binaryData = 3; bool immutable = 4; }
//   Secret    { ObjectMeta metadata = 1; map<string,bytes> data = 2; string type = 3; map<string,string> stringData = 4; bool immutable = 5; }
//   Namespace { ObjectMeta metadata = 1; NamespaceSpec spec = 2 { repeated string finalizers = 1; };
//               NamespaceStatus status = 3 { string phase = 1; } }
//   ObjectMeta (meta/v1) { name = 1; generateName = 2; namespace = 3; labels = 11; annotations = 12; finalizers = 14; ... }
// Maps are repeated entry messages { key = 1; value = 2; }. Fields not listed (selfLink, uid, generation,
// creationTimestamp, ownerReferences, managedFields, ...) are skipped by wire type.
//
// Go's generated marshallers write every non-pointer string even when empty (kubectl sends
// `namespace: ""` for a Namespace); like Go's JSON `omitempty`, empty strings and empty lists are
// left out, so the result matches what kubectl would have sent as JSON.
import { ApiError } from './respond.js';

export const PROTOBUF_MEDIA_TYPE = 'application/vnd.kubernetes.protobuf';

const MAGIC = [0x6b, 0x38, 0x73, 0x00] as const; // "k8s\0"

/** True when a Content-Type header names the Kubernetes protobuf media type (parameters ignored). */
export function isProtobufContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return mediaType === PROTOBUF_MEDIA_TYPE;
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const WIRE_NAMES: Record<number, string> = { 0: 'varint', 1: 'fixed64', 2: 'length-delimited', 3: 'start-group', 4: 'end-group', 5: 'fixed32' };

class Malformed extends Error {}

interface Tag {
  field: number;
  wire: number;
  /** Offset of the tag in the whole body, for messages. */
  at: number;
}

const utf8 = new TextDecoder('utf-8');

/** Reads one message (a byte range of the body); offsets in errors are relative to the whole body. */
class Reader {
  private pos: number;

  constructor(
    private readonly buf: Uint8Array,
    start: number,
    private readonly end: number,
    /** Message name for error messages, e.g. "ConfigMap.metadata". */
    readonly where: string,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private fail(message: string, at = this.pos): never {
    throw new Malformed(`${message} at byte ${at} (in ${this.where})`);
  }

  varint(): number {
    const at = this.pos;
    let value = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint', at);
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) return value;
    }
    return this.fail('varint longer than 10 bytes', at);
  }

  tag(): Tag {
    const at = this.pos;
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field < 1 || field > 0x1fffffff) this.fail(`invalid field number ${field}`, at);
    if (wire === 3 || wire === 4) this.fail(`unsupported ${WIRE_NAMES[wire]} wire type for field ${field}`, at);
    if (wire !== WIRE_VARINT && wire !== WIRE_FIXED64 && wire !== WIRE_LEN && wire !== WIRE_FIXED32) {
      this.fail(`invalid wire type ${wire} for field ${field}`, at);
    }
    return { field, wire, at };
  }

  /** The [start, end) range of a length-delimited value. */
  lengthDelimited(): [number, number] {
    const at = this.pos;
    const length = this.varint();
    const remaining = this.end - this.pos;
    if (length > remaining) this.fail(`length ${length} exceeds the ${remaining} remaining bytes`, at);
    const start = this.pos;
    this.pos += length;
    return [start, this.pos];
  }

  bytes(): Uint8Array {
    const [start, end] = this.lengthDelimited();
    return this.buf.subarray(start, end);
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  /** A nested message's reader. */
  message(where: string): Reader {
    const [start, end] = this.lengthDelimited();
    return new Reader(this.buf, start, end, where);
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  skip(tag: Tag): void {
    switch (tag.wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_LEN:
        this.lengthDelimited();
        return;
      case WIRE_FIXED64:
      case WIRE_FIXED32: {
        const size = tag.wire === WIRE_FIXED64 ? 8 : 4;
        if (this.end - this.pos < size) this.fail(`truncated ${WIRE_NAMES[tag.wire]} value of field ${tag.field}`);
        this.pos += size;
        return;
      }
    }
  }

  /** Fails unless a known field has the wire type its schema declares. */
  expect(tag: Tag, wire: number, name: string): void {
    if (tag.wire !== wire) {
      this.fail(`field ${name} (${tag.field}) has wire type ${WIRE_NAMES[tag.wire]}, expected ${WIRE_NAMES[wire]}`, tag.at);
    }
  }
}

type MapValue = 'string' | 'bytes';

/** Reads one map entry { key = 1; value = 2; } into `into` (later entries win, as in protobuf). */
function readMapEntry(r: Reader, into: Map<string, string>, name: string, value: MapValue): void {
  const entry = r.message(`${r.where}.${name}`);
  let key = '';
  let val = '';
  while (!entry.done) {
    const tag = entry.tag();
    if (tag.field === 1) {
      entry.expect(tag, WIRE_LEN, `${name}.key`);
      key = entry.string();
    } else if (tag.field === 2) {
      entry.expect(tag, WIRE_LEN, `${name}.value`);
      val = value === 'bytes' ? Buffer.from(entry.bytes()).toString('base64') : entry.string();
    } else {
      entry.skip(tag);
    }
  }
  into.set(key, val);
}

/** Object.fromEntries defines own properties, so keys such as "__proto__" survive as data. */
function mapToObject(map: Map<string, string>): Record<string, string> {
  return Object.fromEntries(map);
}

interface MetaAcc {
  strings: Map<string, string>;
  labels: Map<string, string>;
  annotations: Map<string, string>;
  finalizers: string[];
}

function newMeta(): MetaAcc {
  return { strings: new Map(), labels: new Map(), annotations: new Map(), finalizers: [] };
}

const META_STRINGS: Record<number, string> = { 1: 'name', 2: 'generateName', 3: 'namespace' };

/** Merges one ObjectMeta occurrence into `meta` (a repeated message field merges, as in protobuf). */
function readObjectMeta(r: Reader, meta: MetaAcc): void {
  const m = r.message(`${r.where}.metadata`);
  while (!m.done) {
    const tag = m.tag();
    const stringField = META_STRINGS[tag.field];
    if (stringField !== undefined) {
      m.expect(tag, WIRE_LEN, stringField);
      meta.strings.set(stringField, m.string());
    } else if (tag.field === 11) {
      m.expect(tag, WIRE_LEN, 'labels');
      readMapEntry(m, meta.labels, 'labels', 'string');
    } else if (tag.field === 12) {
      m.expect(tag, WIRE_LEN, 'annotations');
      readMapEntry(m, meta.annotations, 'annotations', 'string');
    } else if (tag.field === 14) {
      m.expect(tag, WIRE_LEN, 'finalizers');
      meta.finalizers.push(m.string());
    } else {
      m.skip(tag);
    }
  }
}

function metaToJson(meta: MetaAcc): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ['name', 'generateName', 'namespace']) {
    const value = meta.strings.get(key);
    if (value) out[key] = value;
  }
  if (meta.labels.size > 0) out.labels = mapToObject(meta.labels);
  if (meta.annotations.size > 0) out.annotations = mapToObject(meta.annotations);
  if (meta.finalizers.length > 0) out.finalizers = meta.finalizers;
  return out;
}

function decodeConfigMap(r: Reader): Record<string, unknown> {
  let meta: MetaAcc | undefined;
  const data = new Map<string, string>();
  const binaryData = new Map<string, string>();
  let immutable: boolean | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.field) {
      case 1:
        r.expect(tag, WIRE_LEN, 'metadata');
        readObjectMeta(r, (meta ??= newMeta()));
        break;
      case 2:
        r.expect(tag, WIRE_LEN, 'data');
        readMapEntry(r, data, 'data', 'string');
        break;
      case 3:
        r.expect(tag, WIRE_LEN, 'binaryData');
        readMapEntry(r, binaryData, 'binaryData', 'bytes');
        break;
      case 4:
        r.expect(tag, WIRE_VARINT, 'immutable');
        immutable = r.bool();
        break;
      default:
        r.skip(tag);
    }
  }
  return {
    ...(meta ? { metadata: metaToJson(meta) } : {}),
    ...(data.size > 0 ? { data: mapToObject(data) } : {}),
    ...(binaryData.size > 0 ? { binaryData: mapToObject(binaryData) } : {}),
    ...(immutable !== undefined ? { immutable } : {}),
  };
}

function decodeSecret(r: Reader): Record<string, unknown> {
  let meta: MetaAcc | undefined;
  const data = new Map<string, string>();
  const stringData = new Map<string, string>();
  let type = '';
  let immutable: boolean | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.field) {
      case 1:
        r.expect(tag, WIRE_LEN, 'metadata');
        readObjectMeta(r, (meta ??= newMeta()));
        break;
      case 2:
        r.expect(tag, WIRE_LEN, 'data');
        readMapEntry(r, data, 'data', 'bytes');
        break;
      case 3:
        r.expect(tag, WIRE_LEN, 'type');
        type = r.string();
        break;
      case 4:
        r.expect(tag, WIRE_LEN, 'stringData');
        readMapEntry(r, stringData, 'stringData', 'string');
        break;
      case 5:
        r.expect(tag, WIRE_VARINT, 'immutable');
        immutable = r.bool();
        break;
      default:
        r.skip(tag);
    }
  }
  return {
    ...(meta ? { metadata: metaToJson(meta) } : {}),
    ...(data.size > 0 ? { data: mapToObject(data) } : {}),
    ...(stringData.size > 0 ? { stringData: mapToObject(stringData) } : {}),
    ...(type ? { type } : {}),
    ...(immutable !== undefined ? { immutable } : {}),
  };
}

function decodeNamespace(r: Reader): Record<string, unknown> {
  let meta: MetaAcc | undefined;
  let spec: { finalizers: string[] } | undefined;
  let status: { phase: string } | undefined;
  while (!r.done) {
    const tag = r.tag();
    switch (tag.field) {
      case 1:
        r.expect(tag, WIRE_LEN, 'metadata');
        readObjectMeta(r, (meta ??= newMeta()));
        break;
      case 2: {
        r.expect(tag, WIRE_LEN, 'spec');
        spec ??= { finalizers: [] };
        const s = r.message('Namespace.spec');
        while (!s.done) {
          const t = s.tag();
          if (t.field === 1) {
            s.expect(t, WIRE_LEN, 'finalizers');
            spec.finalizers.push(s.string());
          } else s.skip(t);
        }
        break;
      }
      case 3: {
        r.expect(tag, WIRE_LEN, 'status');
        status ??= { phase: '' };
        const s = r.message('Namespace.status');
        while (!s.done) {
          const t = s.tag();
          if (t.field === 1) {
            s.expect(t, WIRE_LEN, 'phase');
            status.phase = s.string();
          } else s.skip(t); // conditions = 2
        }
        break;
      }
      default:
        r.skip(tag);
    }
  }
  return {
    ...(meta ? { metadata: metaToJson(meta) } : {}),
    ...(spec ? { spec: spec.finalizers.length > 0 ? { finalizers: spec.finalizers } : {} } : {}),
    ...(status ? { status: status.phase ? { phase: status.phase } : {} } : {}),
  };
}

/**
 * A message of strings and nested messages only, by field number (the review kinds below).
 * Empty strings are left out, as Go's JSON omitempty leaves them out.
 */
interface FlatSchema {
  [field: number]: readonly [name: string, type: 'string' | 'meta' | FlatSchema];
}

function decodeFlat(r: Reader, schema: FlatSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let meta: MetaAcc | undefined;
  while (!r.done) {
    const tag = r.tag();
    const entry = schema[tag.field];
    if (!entry) {
      r.skip(tag);
      continue;
    }
    const [name, type] = entry;
    r.expect(tag, WIRE_LEN, name);
    if (type === 'string') {
      const value = r.string();
      if (value !== '') out[name] = value;
    } else if (type === 'meta') {
      readObjectMeta(r, (meta ??= newMeta()));
    } else {
      out[name] = decodeFlat(r.message(`${r.where}.${name}`), type);
    }
  }
  if (meta) out.metadata = metaToJson(meta);
  return out;
}

// k8s.io/api authorization/v1 and authentication/v1 generated.proto: what `kubectl auth can-i`
// and `kubectl auth whoami` (1.33) send.
const RESOURCE_ATTRIBUTES: FlatSchema = {
  1: ['namespace', 'string'],
  2: ['verb', 'string'],
  3: ['group', 'string'],
  4: ['version', 'string'],
  5: ['resource', 'string'],
  6: ['subresource', 'string'],
  7: ['name', 'string'],
};
const NON_RESOURCE_ATTRIBUTES: FlatSchema = { 1: ['path', 'string'], 2: ['verb', 'string'] };
const SELF_SUBJECT_ACCESS_REVIEW: FlatSchema = {
  1: ['metadata', 'meta'],
  2: ['spec', { 1: ['resourceAttributes', RESOURCE_ATTRIBUTES], 2: ['nonResourceAttributes', NON_RESOURCE_ATTRIBUTES] }],
};
const SELF_SUBJECT_RULES_REVIEW: FlatSchema = { 1: ['metadata', 'meta'], 2: ['spec', { 1: ['namespace', 'string'] }] };
const SELF_SUBJECT_REVIEW: FlatSchema = { 1: ['metadata', 'meta'] };

/** Decoders by apiVersion and kind. */
const DECODERS: Record<string, (r: Reader) => Record<string, unknown>> = {
  'v1/ConfigMap': decodeConfigMap,
  'v1/Secret': decodeSecret,
  'v1/Namespace': decodeNamespace,
  'authorization.k8s.io/v1/SelfSubjectAccessReview': (r) => decodeFlat(r, SELF_SUBJECT_ACCESS_REVIEW),
  'authorization.k8s.io/v1/SelfSubjectRulesReview': (r) => decodeFlat(r, SELF_SUBJECT_RULES_REVIEW),
  'authentication.k8s.io/v1/SelfSubjectReview': (r) => decodeFlat(r, SELF_SUBJECT_REVIEW),
};

interface Envelope {
  apiVersion: string;
  kind: string;
  raw: [number, number];
  contentEncoding: string;
  contentType: string;
}

function readEnvelope(body: Uint8Array): Envelope {
  const r = new Reader(body, MAGIC.length, body.length, 'runtime.Unknown');
  const env: Envelope = { apiVersion: '', kind: '', raw: [0, 0], contentEncoding: '', contentType: '' };
  while (!r.done) {
    const tag = r.tag();
    switch (tag.field) {
      case 1: {
        r.expect(tag, WIRE_LEN, 'typeMeta');
        const t = r.message('runtime.Unknown.typeMeta');
        while (!t.done) {
          const tt = t.tag();
          if (tt.field === 1) {
            t.expect(tt, WIRE_LEN, 'apiVersion');
            env.apiVersion = t.string();
          } else if (tt.field === 2) {
            t.expect(tt, WIRE_LEN, 'kind');
            env.kind = t.string();
          } else t.skip(tt);
        }
        break;
      }
      case 2:
        r.expect(tag, WIRE_LEN, 'raw');
        env.raw = r.lengthDelimited();
        break;
      case 3:
        r.expect(tag, WIRE_LEN, 'contentEncoding');
        env.contentEncoding = r.string();
        break;
      case 4:
        r.expect(tag, WIRE_LEN, 'contentType');
        env.contentType = r.string();
        break;
      default:
        r.skip(tag);
    }
  }
  return env;
}

function badRequest(message: string): ApiError {
  return ApiError.badRequest(`invalid protobuf request body: ${message}`);
}

function unsupported(message: string): ApiError {
  return new ApiError(415, 'UnsupportedMediaType', message);
}

/**
 * Decodes a Kubernetes protobuf body (magic + runtime.Unknown) of a ConfigMap, Secret or Namespace
 * into its JSON form. Malformed input throws a 400 BadRequest ApiError; other kinds, API versions or
 * content encodings throw a 415 UnsupportedMediaType ApiError.
 */
export function decodeProtobufObject(body: Uint8Array): Record<string, unknown> {
  if (body.length < MAGIC.length || MAGIC.some((b, i) => body[i] !== b)) {
    throw badRequest('it does not start with the Kubernetes protobuf magic number "k8s\\x00"');
  }
  let env: Envelope;
  try {
    env = readEnvelope(body);
  } catch (err) {
    if (err instanceof Malformed) throw badRequest(err.message);
    throw err;
  }
  if (env.kind === '') throw badRequest('the runtime.Unknown envelope names no kind');
  if (env.contentEncoding !== '') {
    throw unsupported(`the simulated cluster does not support protobuf content encoding "${env.contentEncoding}" (${env.kind})`);
  }
  if (env.contentType !== '' && !isProtobufContentType(env.contentType)) {
    throw unsupported(`the simulated cluster cannot decode ${env.kind} raw content of type "${env.contentType}" inside a protobuf envelope`);
  }
  const decode = DECODERS[`${env.apiVersion}/${env.kind}`];
  if (decode === undefined) {
    const gvk = `${env.apiVersion || '<no apiVersion>'}, Kind=${env.kind}`;
    throw unsupported(
      `the simulated cluster cannot decode ${PROTOBUF_MEDIA_TYPE} bodies of kind ${env.kind} (${gvk}); ` +
        `protobuf is supported for ${Object.keys(DECODERS).join(', ')}; send application/json instead`,
    );
  }
  let fields: Record<string, unknown>;
  try {
    fields = decode(new Reader(body, env.raw[0], env.raw[1], env.kind));
  } catch (err) {
    if (err instanceof Malformed) throw badRequest(err.message);
    throw err;
  }
  return { apiVersion: env.apiVersion, kind: env.kind, ...fields };
}

// Reading a Kubernetes protobuf body (`application/vnd.kubernetes.protobuf`, what typed clients
// such as kubectl 1.33's `create secret` send) far enough for an approver: the `k8s\0` envelope
// (runtime.Unknown: typeMeta, raw), every object's metadata, and a Secret's type and data. Field
// numbers are those of k8s.io/api's generated.proto. Anything else is left out, and the caller says
// so; nothing here decides what is allowed (the approval binds the exact bytes by their hash).

const MAGIC = [0x6b, 0x38, 0x73, 0x00];

interface Field {
  no: number;
  wire: number;
  /** Varint value (wire 0) or the bytes (wire 2); fixed-width fields are skipped. */
  varint?: bigint;
  bytes?: Uint8Array;
}

/** The fields of one message, or undefined if it is not well-formed protobuf. */
function fields(buf: Uint8Array): Field[] | undefined {
  const out: Field[] = [];
  let i = 0;
  const varint = (): bigint | undefined => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (i >= buf.length) return undefined;
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
    }
    return undefined;
  };
  while (i < buf.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      out.push({ no, wire, varint: v });
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || i + Number(len) > buf.length) return undefined;
      out.push({ no, wire, bytes: buf.subarray(i, i + Number(len)) });
      i += Number(len);
    } else if (wire === 1 || wire === 5) {
      i += wire === 1 ? 8 : 4;
      if (i > buf.length) return undefined;
    } else {
      return undefined;
    }
  }
  return out;
}

const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b ?? new Uint8Array());
/** A scalar field: the last occurrence wins, as in protobuf. */
const one = (fs: Field[], no: number): Field | undefined => fs.filter((f) => f.no === no).pop();
/**
 * An embedded message field: protobuf merges every occurrence (their bytes concatenated are the
 * merged message), so an object cannot hide a metadata block behind a second one.
 */
const merged = (fs: Field[], no: number): Uint8Array | undefined => {
  const parts = fs.filter((f) => f.no === no && f.bytes).map((f) => f.bytes!);
  return parts.length === 0 ? undefined : parts.length === 1 ? parts[0] : Buffer.concat(parts);
};

/** A `map<string, V>`: repeated entries {key = 1, value = 2}. */
function map(fs: Field[], no: number, value: (b: Uint8Array | undefined) => string): Record<string, string> | undefined {
  const entries = fs.filter((f) => f.no === no && f.bytes);
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const e of entries) {
    const kv = fields(e.bytes!) ?? [];
    out[text(one(kv, 1)?.bytes)] = value(one(kv, 2)?.bytes);
  }
  return out;
}

/** ObjectMeta: name 1, generateName 2, namespace 3, labels 11, annotations 12. */
function objectMeta(b: Uint8Array | undefined): Record<string, unknown> {
  const fs = (b && fields(b)) ?? [];
  const meta: Record<string, unknown> = {};
  for (const [no, key] of [
    [1, 'name'],
    [2, 'generateName'],
    [3, 'namespace'],
  ] as const) {
    const f = one(fs, no);
    if (f?.bytes) meta[key] = text(f.bytes);
  }
  const labels = map(fs, 11, text);
  const annotations = map(fs, 12, text);
  if (labels) meta['labels'] = labels;
  if (annotations) meta['annotations'] = annotations;
  return meta;
}

/** Secret: metadata 1, data 2 (bytes, shown base64 like JSON), type 3, stringData 4, immutable 5. */
function secret(fs: Field[], out: Record<string, unknown>): void {
  const data = map(fs, 2, (b) => Buffer.from(b ?? new Uint8Array()).toString('base64'));
  const stringData = map(fs, 4, text);
  const type = one(fs, 3);
  const immutable = one(fs, 5);
  if (data) out['data'] = data;
  if (stringData) out['stringData'] = stringData;
  if (type?.bytes) out['type'] = text(type.bytes);
  if (immutable?.varint !== undefined) out['immutable'] = immutable.varint !== 0n;
}

export interface DecodedProtobuf {
  /** apiVersion, kind, metadata, and for a Secret its data, stringData, type and immutable. */
  object: Record<string, unknown>;
  /** Whether fields beyond these were left out (every kind but Secret has a spec, rules, ...). */
  partial: boolean;
}

/** The object in a Kubernetes protobuf body, as far as it is read; undefined if it is not one. */
export function decodeKubeProtobuf(body: Uint8Array): DecodedProtobuf | undefined {
  if (body.length < MAGIC.length || MAGIC.some((b, i) => body[i] !== b)) return undefined;
  const unknown = fields(body.subarray(MAGIC.length));
  if (!unknown) return undefined;
  const typeMeta = fields(merged(unknown, 1) ?? new Uint8Array()) ?? [];
  const raw = one(unknown, 2)?.bytes;
  const encoding = one(unknown, 3)?.bytes;
  if (!raw || (encoding && encoding.length > 0)) return undefined;
  const fs = fields(raw);
  if (!fs) return undefined;
  const object: Record<string, unknown> = { apiVersion: text(one(typeMeta, 1)?.bytes), kind: text(one(typeMeta, 2)?.bytes), metadata: objectMeta(merged(fs, 1)) };
  if (object['kind'] === 'Secret') {
    secret(fs, object);
    return { object, partial: false };
  }
  return { object, partial: fs.some((f) => f.no !== 1) };
}

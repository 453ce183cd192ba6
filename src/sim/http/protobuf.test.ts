// The Kubernetes protobuf body decoder: hand-built bytes for each kind, bytes captured from a real
// kubectl 1.33, malformed input, the Content-Type switch in the body reader, and real kubectl 1.33
// (protobuf) and 1.27 (JSON) creating objects in a started SimCluster.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKubectl } from '../../../test/helpers/kubectl.js';
import { writeKubeconfig } from '../../app/kubeconfig.js';
import { SimCluster } from '../cluster.js';
import { readObjectBody } from './body.js';
import { decodeProtobufObject, isProtobufContentType, PROTOBUF_MEDIA_TYPE } from './protobuf.js';
import { ApiError } from './respond.js';

// ---- a tiny protobuf encoder, independent of the decoder under test ----

type Bytes = number[];
const MAGIC: Bytes = [0x6b, 0x38, 0x73, 0x00];

function varint(n: number): Bytes {
  const out: Bytes = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}
const key = (field: number, wire: number): Bytes => varint(field * 8 + wire);
function toBytes(value: Bytes | Uint8Array | string): Bytes {
  return typeof value === 'string' ? [...Buffer.from(value, 'utf8')] : [...value];
}
/** A length-delimited field (string, bytes or message). */
const ld = (field: number, value: Bytes | Uint8Array | string): Bytes => {
  const bytes = toBytes(value);
  return [...key(field, 2), ...varint(bytes.length), ...bytes];
};
const msg = (field: number, ...parts: Bytes[]): Bytes => ld(field, parts.flat());
const uint = (field: number, n: number): Bytes => [...key(field, 0), ...varint(n)];
const fixed64 = (field: number): Bytes => [...key(field, 1), 1, 2, 3, 4, 5, 6, 7, 8];
const fixed32 = (field: number): Bytes => [...key(field, 5), 1, 2, 3, 4];
/** A map<string, string|bytes> entry. */
const entry = (field: number, k: string, v: Bytes | Uint8Array | string): Bytes => msg(field, ld(1, k), ld(2, v));
function envelope(apiVersion: string, kind: string, raw: Bytes, ...extra: Bytes[]): Uint8Array {
  return Uint8Array.from([...MAGIC, ...msg(1, ld(1, apiVersion), ld(2, kind)), ...ld(2, raw), ...extra.flat()]);
}
const b64 = (bytes: Bytes | string) => Buffer.from(typeof bytes === 'string' ? Buffer.from(bytes) : Uint8Array.from(bytes)).toString('base64');

/** ObjectMeta as Go marshals it: empty strings written, plus system fields the decoder must skip. */
function objectMeta(name: string, namespace: string, ...extra: Bytes[]): Bytes {
  return msg(
    1,
    ld(1, name),
    ld(2, ''), // generateName
    ld(3, namespace),
    ld(4, ''), // selfLink
    ld(5, ''), // uid
    ld(6, ''), // resourceVersion
    uint(7, 3), // generation
    msg(8, uint(1, 1_700_000_000), uint(2, 5)), // creationTimestamp
    ...extra,
  );
}

function decodeError(body: Uint8Array): ApiError {
  try {
    decodeProtobufObject(body);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    return err as ApiError;
  }
  throw new Error('expected the body to be rejected');
}

const BINARY: Bytes = [0x00, 0xff, 0xfe, 0x80, 0x01, 0x0a];

describe('decodeProtobufObject', () => {
  it('decodes bodies captured from kubectl 1.33 (create configmap / secret generic / namespace)', () => {
    const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
    // kubectl.1.33 create configmap c -n demo --from-literal=a=b
    expect(
      decodeProtobufObject(
        hex('6b3873000a0f0a0276311209436f6e6669674d6170121f0a150a016312001a0464656d6f22002a0032003800420012060a01611201621a002200'),
      ),
    ).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'demo' }, data: { a: 'b' } });
    // kubectl.1.33 create secret generic s -n demo --from-literal=p=q
    expect(
      decodeProtobufObject(
        hex('6b3873000a0c0a027631120653656372657412210a150a017312001a0464656d6f22002a0032003800420012060a01701201711a001a002200'),
      ),
    ).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'demo' }, data: { p: b64('q') } });
    // kubectl.1.33 create namespace nsx (sends namespace: "" and an empty status.phase)
    expect(
      decodeProtobufObject(
        hex('6b3873000a0f0a02763112094e616d657370616365121b0a130a036e737812001a0022002a0032003800420012001a020a001a002200'),
      ),
    ).toEqual({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'nsx' }, spec: {}, status: {} });
  });

  it('decodes a ConfigMap with labels, annotations, finalizers, data, binaryData and immutable', () => {
    const raw = [
      ...objectMeta(
        'settings',
        'demo',
        entry(11, 'app', 'web'),
        entry(11, 'tier', 'front'),
        entry(12, 'note', 'multi\nline ✓'),
        ld(14, 'example.com/keep'),
        ld(14, 'example.com/also'),
        msg(17, ld(1, 'kubectl-create'), ld(2, 'Update')), // managedFields
        msg(13, ld(1, 'ReplicaSet'), ld(3, 'rs')), // ownerReferences
      ),
      ...entry(2, 'a', 'b'),
      ...entry(2, 'config.yaml', 'x: 1\ny: [2, 3]\n'),
      ...entry(2, 'empty', ''),
      ...entry(3, 'blob', BINARY),
      ...entry(3, 'none', []),
      ...uint(4, 1),
    ];
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', raw))).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'settings',
        namespace: 'demo',
        labels: { app: 'web', tier: 'front' },
        annotations: { note: 'multi\nline ✓' },
        finalizers: ['example.com/keep', 'example.com/also'],
      },
      data: { a: 'b', 'config.yaml': 'x: 1\ny: [2, 3]\n', empty: '' },
      binaryData: { blob: b64(BINARY), none: '' },
      immutable: true,
    });
  });

  it('decodes a Secret: data bytes become base64 strings; stringData, type, immutable=false kept', () => {
    const raw = [
      ...objectMeta('creds', 'demo', entry(11, 'team', 'db')),
      ...entry(2, 'user', 'admin'),
      ...entry(2, 'key', BINARY),
      ...ld(3, 'example.com/custom'),
      ...entry(4, 'plain', 'text value'),
      ...uint(5, 0),
    ];
    expect(decodeProtobufObject(envelope('v1', 'Secret', raw))).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds', namespace: 'demo', labels: { team: 'db' } },
      data: { user: b64('admin'), key: b64(BINARY) },
      stringData: { plain: 'text value' },
      type: 'example.com/custom',
      immutable: false,
    });
  });

  it('decodes a Namespace with generateName, spec.finalizers and status.phase (conditions skipped)', () => {
    const raw = [
      ...msg(1, ld(1, ''), ld(2, 'team-'), ld(3, ''), entry(12, 'owner', 'me')),
      ...msg(2, ld(1, 'kubernetes'), ld(1, 'example.com/x')),
      ...msg(3, ld(1, 'Active'), msg(2, ld(1, 'NamespaceDeletionDiscoveryFailure'), ld(2, 'False'))),
    ];
    expect(decodeProtobufObject(envelope('v1', 'Namespace', raw))).toEqual({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { generateName: 'team-', annotations: { owner: 'me' } },
      spec: { finalizers: ['kubernetes', 'example.com/x'] },
      status: { phase: 'Active' },
    });
  });

  it('follows protobuf merge rules: later map keys and scalars win, repeated metadata merges, missing key/value are ""', () => {
    const raw = [
      ...msg(1, ld(1, 'first'), entry(11, 'a', '1')),
      ...entry(2, 'k', 'old'),
      ...entry(2, 'k', 'new'),
      ...msg(2, ld(2, 'value-without-key')),
      ...msg(2, ld(1, 'key-without-value')),
      ...msg(1, ld(1, 'second'), entry(11, 'b', '2')),
      ...uint(4, 1),
      ...uint(4, 0),
    ];
    expect(decodeProtobufObject(envelope('v1', 'ConfigMap', raw))).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'second', labels: { a: '1', b: '2' } },
      data: { k: 'new', '': 'value-without-key', 'key-without-value': '' },
      immutable: false,
    });
  });

  it('keeps a "__proto__" map key as plain data', () => {
    const obj = decodeProtobufObject(envelope('v1', 'ConfigMap', [...msg(1, ld(1, 'p')), ...entry(2, '__proto__', 'x')]));
    const data = obj.data as Record<string, string>;
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(Object.keys(data)).toEqual(['__proto__']);
    expect(JSON.stringify(obj.data)).toBe('{"__proto__":"x"}');
  });

  it('skips unknown fields of every wire type, in the envelope and in the object', () => {
    const raw = [...uint(99, 300), ...fixed64(98), ...fixed32(97), ...ld(96, [1, 2, 3]), ...objectMeta('c', 'demo'), ...entry(2, 'a', 'b')];
    const body = envelope('v1', 'ConfigMap', raw, ld(3, ''), ld(4, ''), uint(50, 1), fixed64(51), fixed32(52));
    expect(decodeProtobufObject(body)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'demo' }, data: { a: 'b' } });
  });

  it('accepts a contentType of application/vnd.kubernetes.protobuf in the envelope', () => {
    const body = envelope('v1', 'Secret', objectMeta('s', 'demo'), ld(4, PROTOBUF_MEDIA_TYPE));
    expect(decodeProtobufObject(body)).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'demo' } });
  });

  describe('unsupported content: 415 UnsupportedMediaType naming the kind', () => {
    it.each([
      ['v1', 'Pod'],
      ['v1', 'Service'],
      ['apps/v1', 'Deployment'],
      ['apps/v1', 'ConfigMap'],
    ])('%s %s', (apiVersion, kind) => {
      const err = decodeError(envelope(apiVersion, kind, objectMeta('x', 'demo')));
      expect(err.code).toBe(415);
      expect(err.reason).toBe('UnsupportedMediaType');
      expect(err.message).toContain(`kind ${kind}`);
      expect(err.message).toContain(`${apiVersion}, Kind=${kind}`);
      expect(err.message).toContain('application/json');
    });

    it('a content encoding (e.g. gzip) in the envelope', () => {
      const err = decodeError(envelope('v1', 'ConfigMap', [], ld(3, 'gzip')));
      expect([err.code, err.reason]).toEqual([415, 'UnsupportedMediaType']);
      expect(err.message).toContain('"gzip"');
      expect(err.message).toContain('ConfigMap');
    });

    it('raw content declared as JSON inside the protobuf envelope', () => {
      const err = decodeError(envelope('v1', 'ConfigMap', [], ld(4, 'application/json')));
      expect([err.code, err.reason]).toEqual([415, 'UnsupportedMediaType']);
      expect(err.message).toContain('ConfigMap');
    });
  });

  describe('malformed bodies: 400 BadRequest with a clear message', () => {
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['empty body', new Uint8Array(), /magic number "k8s\\x00"/],
      ['a JSON body', Uint8Array.from(Buffer.from('{"kind":"ConfigMap"}')), /magic number/],
      ['a truncated magic', Uint8Array.from([0x6b, 0x38, 0x73]), /magic number/],
      ['the magic alone (no kind)', Uint8Array.from(MAGIC), /names no kind/],
      ['a truncated varint tag', Uint8Array.from([...MAGIC, 0x80]), /truncated varint at byte 4 \(in runtime\.Unknown\)/],
      ['a varint longer than 10 bytes', Uint8Array.from([...MAGIC, ...new Array<number>(11).fill(0xff), 0x01]), /varint longer than 10 bytes at byte 4/],
      ['field number 0', Uint8Array.from([...MAGIC, 0x02, 0x00]), /invalid field number 0 at byte 4/],
      ['a start-group wire type', Uint8Array.from([...MAGIC, ...key(7, 3)]), /unsupported start-group wire type for field 7/],
      ['an end-group wire type', Uint8Array.from([...MAGIC, ...key(7, 4)]), /unsupported end-group wire type for field 7/],
      ['wire type 6', Uint8Array.from([...MAGIC, ...key(7, 6)]), /invalid wire type 6 for field 7/],
      ['wire type 7', Uint8Array.from([...MAGIC, ...key(7, 7)]), /invalid wire type 7 for field 7/],
      ['a length beyond the buffer (envelope)', Uint8Array.from([...MAGIC, ...key(2, 2), 0x05, 1, 2]), /length 5 exceeds the 2 remaining bytes at byte 5 \(in runtime\.Unknown\)/],
      ['a huge length', Uint8Array.from([...MAGIC, ...key(2, 2), 0xff, 0xff, 0xff, 0xff, 0x0f]), /length 4294967295 exceeds the 0 remaining bytes/],
      ['a truncated fixed64', Uint8Array.from([...MAGIC, ...key(9, 1), 1, 2, 3]), /truncated fixed64 value of field 9/],
      ['a truncated fixed32', Uint8Array.from([...MAGIC, ...key(9, 5), 1]), /truncated fixed32 value of field 9/],
      ['typeMeta as a varint', Uint8Array.from([...MAGIC, ...uint(1, 5)]), /field typeMeta \(1\) has wire type varint, expected length-delimited/],
      ['kind as a fixed32', Uint8Array.from([...MAGIC, ...msg(1, ld(1, 'v1'), fixed32(2))]), /field kind \(2\) has wire type fixed32.*in runtime\.Unknown\.typeMeta/],
      ['ConfigMap.data as a varint', envelope('v1', 'ConfigMap', uint(2, 1)), /field data \(2\) has wire type varint, expected length-delimited at byte \d+ \(in ConfigMap\)/],
      ['ConfigMap.immutable as a string', envelope('v1', 'ConfigMap', ld(4, 'yes')), /field immutable \(4\) has wire type length-delimited, expected varint/],
      ['Secret.type as a varint', envelope('v1', 'Secret', uint(3, 1)), /field type \(3\) has wire type varint/],
      ['ObjectMeta.name as a varint', envelope('v1', 'Secret', msg(1, uint(1, 7))), /field name \(1\) has wire type varint.*in Secret\.metadata/],
      ['a label entry key as a varint', envelope('v1', 'ConfigMap', msg(1, msg(11, uint(1, 1)))), /field labels\.key \(1\) has wire type varint.*in ConfigMap\.metadata\.labels/],
      ['Namespace.spec.finalizers as a varint', envelope('v1', 'Namespace', msg(2, uint(1, 1))), /field finalizers \(1\) has wire type varint.*in Namespace\.spec/],
      ['a nested length beyond its message', envelope('v1', 'ConfigMap', [...key(1, 2), 3, ...key(1, 2), 9, 0x61]), /length 9 exceeds the 1 remaining bytes.*in ConfigMap\.metadata/],
      ['a truncated varint inside the object', envelope('v1', 'Secret', [...key(5, 0), 0x80]), /truncated varint.*in Secret\)/],
    ];
    it.each(cases)('%s', (_name, body, message) => {
      const err = decodeError(body);
      expect(err.code).toBe(400);
      expect(err.reason).toBe('BadRequest');
      expect(err.message).toMatch(/^invalid protobuf request body: /);
      expect(err.message).toMatch(message);
    });

    it('every truncation of a valid body is decoded or rejected with 400, never a crash', () => {
      const raw = [
        ...objectMeta('settings', 'demo', entry(11, 'app', 'web'), ld(14, 'f'), msg(17, ld(1, 'm'))),
        ...entry(2, 'a', 'b'),
        ...entry(3, 'blob', BINARY),
        ...uint(4, 1),
      ];
      const full = envelope('v1', 'ConfigMap', raw, ld(4, PROTOBUF_MEDIA_TYPE));
      for (let n = 0; n < full.length; n++) {
        try {
          decodeProtobufObject(full.subarray(0, n));
        } catch (err) {
          expect(err, `prefix of ${n} bytes`).toBeInstanceOf(ApiError);
          expect((err as ApiError).code, `prefix of ${n} bytes`).toBe(400);
        }
      }
    });

    it('random bytes after the magic are decoded or rejected with 400/415, never a crash', () => {
      let seed = 12345;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
      const valid = [...msg(1, ld(1, 'v1'), ld(2, 'ConfigMap'))];
      for (let i = 0; i < 2000; i++) {
        const noise = Array.from({ length: 1 + (i % 40) }, rand);
        for (const body of [[...MAGIC, ...noise], [...MAGIC, ...valid, ...key(2, 2), noise.length, ...noise]]) {
          try {
            decodeProtobufObject(Uint8Array.from(body));
          } catch (err) {
            expect(err).toBeInstanceOf(ApiError);
            expect([400, 415]).toContain((err as ApiError).code);
          }
        }
      }
    });
  });
});

describe('isProtobufContentType', () => {
  it.each([
    ['application/vnd.kubernetes.protobuf', true],
    ['Application/VND.Kubernetes.Protobuf; charset=binary', true],
    [' application/vnd.kubernetes.protobuf ;stream=watch', true],
    ['application/json', false],
    ['application/vnd.kubernetes.protobuf+json', false],
    ['', false],
    [undefined, false],
  ])('%s -> %s', (header, expected) => {
    expect(isProtobufContentType(header)).toBe(expected);
  });
});

describe('readObjectBody chooses the decoder from Content-Type', () => {
  const request = (body: Uint8Array | string, contentType?: string): IncomingMessage =>
    Object.assign(Readable.from([Buffer.from(body)]), {
      headers: contentType === undefined ? {} : { 'content-type': contentType },
    }) as unknown as IncomingMessage;
  const cmJson = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } };
  const cmProto = envelope('v1', 'ConfigMap', [...msg(1, ld(1, 'c')), ...entry(2, 'a', 'b')]);

  it('JSON by default and for application/json', async () => {
    await expect(readObjectBody(request(JSON.stringify(cmJson)))).resolves.toEqual(cmJson);
    await expect(readObjectBody(request(JSON.stringify(cmJson), 'application/json'))).resolves.toEqual(cmJson);
    await expect(readObjectBody(request(''))).resolves.toBeUndefined();
  });

  it('protobuf for application/vnd.kubernetes.protobuf, giving the same object as the JSON', async () => {
    await expect(readObjectBody(request(cmProto, 'application/vnd.kubernetes.protobuf'))).resolves.toEqual(cmJson);
  });

  it('a protobuf body sent as JSON, or JSON sent as protobuf, is a 400', async () => {
    await expect(readObjectBody(request(cmProto, 'application/json'))).rejects.toMatchObject({ code: 400, message: 'request body is not valid JSON' });
    await expect(readObjectBody(request(JSON.stringify(cmJson), PROTOBUF_MEDIA_TYPE))).rejects.toMatchObject({
      code: 400,
      message: expect.stringContaining('magic number'),
    });
  });

  it('the 3 MiB limit applies to protobuf bodies too', async () => {
    const big = new Uint8Array(3 * 1024 * 1024 + 1);
    await expect(readObjectBody(request(big, PROTOBUF_MEDIA_TYPE))).rejects.toMatchObject({ code: 413, reason: 'RequestEntityTooLarge' });
  });
});

// ---- real kubectl against a started SimCluster ----

describe('kubectl create against the sim', () => {
  let sim: SimCluster;
  let dir: string;
  let kubeconfig: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kb-protobuf-test-'));
    sim = new SimCluster({ onError: (err) => console.error('sim error:', err) });
    await sim.start();
    kubeconfig = join(dir, 'kubeconfig');
    await writeKubeconfig(kubeconfig, { server: sim.url, caPem: sim.caPem, token: sim.token, name: 'sim' });
    writeFileSync(join(dir, 'blob.bin'), Uint8Array.from(BINARY));
  });
  afterAll(async () => {
    await sim?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Content-Type of the last POST the sim received to a path starting with `prefix`. */
  const lastPostContentType = (prefix: string) =>
    sim.requests.entries.filter((e) => e.method === 'POST' && e.path.startsWith(prefix)).at(-1)?.headers['content-type'];

  describe.each([
    { minor: 33, contentType: 'application/vnd.kubernetes.protobuf' },
    { minor: 27, contentType: 'application/json' },
  ])('kubectl 1.$minor (sends $contentType)', ({ minor, contentType }) => {
    const kubectl = async (...args: string[]) => {
      const result = await runKubectl({ minor, kubeconfig, args });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return result.stdout.toString();
    };
    const getJson = async (...args: string[]) => JSON.parse(await kubectl('get', ...args, '-o', 'json'));

    it('create configmap (literals, an empty value, a binary file) reads back exactly', async () => {
      const name = `pb-cm-${minor}`;
      const out = await kubectl(
        'create', 'configmap', name, '-n', 'demo',
        '--from-literal=a=b', '--from-literal=greeting=hello, wörld = ok', '--from-literal=empty=',
        `--from-file=blob=${join(dir, 'blob.bin')}`,
      );
      expect(out.trim()).toBe(`configmap/${name} created`);
      expect(lastPostContentType('/api/v1/namespaces/demo/configmaps')).toBe(contentType);
      const cm = await getJson('configmap', '-n', 'demo', name);
      expect(cm.kind).toBe('ConfigMap');
      expect(cm.metadata.name).toBe(name);
      expect(cm.metadata.namespace).toBe('demo');
      expect(cm.data).toEqual({ a: 'b', greeting: 'hello, wörld = ok', empty: '' });
      expect(cm.binaryData).toEqual({ blob: b64(BINARY) });
    });

    it('create secret generic --from-literal reads back with exact base64 data and type', async () => {
      const name = `pb-secret-${minor}`;
      const out = await kubectl(
        'create', 'secret', 'generic', name, '-n', 'demo',
        '--from-literal=user=admin', '--from-literal=password=s3cr3t!=x', `--from-file=key=${join(dir, 'blob.bin')}`,
        '--type=example.com/custom',
      );
      expect(out.trim()).toBe(`secret/${name} created`);
      expect(lastPostContentType('/api/v1/namespaces/demo/secrets')).toBe(contentType);
      const secret = await getJson('secret', '-n', 'demo', name);
      expect(secret.kind).toBe('Secret');
      expect(secret.metadata.namespace).toBe('demo');
      expect(secret.data).toEqual({ user: b64('admin'), password: b64('s3cr3t!=x'), key: b64(BINARY) });
      expect(secret.type).toBe('example.com/custom');
      expect(await kubectl('get', 'secret', '-n', 'demo', name, '-o', 'jsonpath={.data.password}')).toBe(b64('s3cr3t!=x'));
    });

    it('create namespace reads back, and objects can be created in it', async () => {
      const name = `pb-ns-${minor}`;
      expect((await kubectl('create', 'namespace', name)).trim()).toBe(`namespace/${name} created`);
      expect(lastPostContentType('/api/v1/namespaces?')).toBe(contentType);
      const ns = await getJson('namespace', name);
      expect(ns.kind).toBe('Namespace');
      expect(ns.metadata.name).toBe(name);
      expect(ns.metadata.namespace).toBeUndefined();
      expect(ns.status).toEqual({ phase: 'Active' });
      await kubectl('create', 'configmap', 'inside', '-n', name, '--from-literal=k=v');
      expect((await getJson('configmap', '-n', name, 'inside')).data).toEqual({ k: 'v' });
    });

    it('a duplicate create is a clean AlreadyExists error', async () => {
      const result = await runKubectl({ minor, kubeconfig, args: ['create', 'configmap', `pb-cm-${minor}`, '-n', 'demo', '--from-literal=a=c'] });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain(`configmaps "pb-cm-${minor}" already exists`);
    });
  });
});

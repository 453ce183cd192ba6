import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import { exitCodeStatus, successStatus } from '../../protocol/status.js';
import { ErrorCode, isBastionError } from '../../errors/index.js';
import { CloseCode } from './receiver.js';
import { TestClient, rawUpgrade, startHarness, type Harness } from './test-support.js';

const SUCCESS_JSON = '{"metadata":{},"status":"Success"}';
const EXIT3_JSON =
  '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3",' +
  '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}';
const CLIENT_NODE = 'v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io';

const frame = (channel: number, text = ''): Buffer => Buffer.concat([Buffer.from([channel]), Buffer.from(text, 'latin1')]);

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

describe('handshake and negotiation (raw upgrade requests)', () => {
  async function upgradeWith(protocolHeader: string | string[] | undefined) {
    const headers = protocolHeader === undefined ? {} : { 'Sec-WebSocket-Protocol': protocolHeader };
    const [res, accepted] = await Promise.all([rawUpgrade(h.port, headers), h.nextAccepted()]);
    if (accepted.ok) accepted.streams.destroy();
    return { res, accepted };
  }

  it('repeated header lines: the first supported one wins (v5)', async () => {
    const { res, accepted } = await upgradeWith(['v5.channel.k8s.io', 'v4.channel.k8s.io']);
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBe('v5.channel.k8s.io');
    expect(accepted.ok && accepted.streams.protocol.version).toBe(5);
  });

  it("client-node's comma-joined list selects v5", async () => {
    const { res, accepted } = await upgradeWith(CLIENT_NODE);
    expect(res.headers['sec-websocket-protocol']).toBe('v5.channel.k8s.io');
    expect(accepted.ok && accepted.streams.protocolName).toBe('v5.channel.k8s.io');
  });

  it('repeated lines with unsupported names first still find v4', async () => {
    const { res } = await upgradeWith(['v3.channel.k8s.io', 'v2.channel.k8s.io, v4.channel.k8s.io']);
    expect(res.headers['sec-websocket-protocol']).toBe('v4.channel.k8s.io');
  });

  it('only v4 offered -> v4', async () => {
    const { res, accepted } = await upgradeWith('v4.channel.k8s.io');
    expect(res.headers['sec-websocket-protocol']).toBe('v4.channel.k8s.io');
    expect(accepted.ok && [accepted.streams.protocol.version, accepted.streams.protocol.supportsStreamClose]).toEqual([4, false]);
  });

  it('base64 variants', async () => {
    expect((await upgradeWith('v4.base64.channel.k8s.io')).res.headers['sec-websocket-protocol']).toBe('v4.base64.channel.k8s.io');
    expect((await upgradeWith('base64.channel.k8s.io')).res.headers['sec-websocket-protocol']).toBe('base64.channel.k8s.io');
  });

  it('no header: upgraded with channel.k8s.io semantics and no subprotocol echoed', async () => {
    const { res, accepted } = await upgradeWith(undefined);
    expect(res.status).toBe(101);
    expect(res.headers['sec-websocket-protocol']).toBeUndefined();
    expect(accepted.ok && [accepted.streams.protocolName, accepted.streams.protocol.name]).toEqual(['', 'channel.k8s.io']);
  });

  it('nothing supported offered: 403 with a Status body before any upgrade, promise rejects', async () => {
    const { res, accepted } = await upgradeWith(['v3.channel.k8s.io', 'v2.channel.k8s.io']);
    expect(res.status).toBe(403);
    expect(res.headers['content-type']).toBe('application/json');
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403 });
    expect(!accepted.ok && isBastionError(accepted.error, ErrorCode.NO_COMMON_PROTOCOL)).toBe(true);
  });

  it('a POST upgrade is refused with 405 (that is the SPDY form)', async () => {
    const [res, accepted] = await Promise.all([
      rawUpgrade(h.port, { 'Sec-WebSocket-Protocol': 'v5.channel.k8s.io' }, { method: 'POST' }),
      h.nextAccepted(),
    ]);
    expect(res.status).toBe(405);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', code: 405 });
    expect(!accepted.ok && isBastionError(accepted.error, ErrorCode.METHOD_NOT_ALLOWED)).toBe(true);
  });

  it('a bad Sec-WebSocket-Key is refused with 400', async () => {
    const [res, accepted] = await Promise.all([rawUpgrade(h.port, { 'Sec-WebSocket-Key': 'short' }), h.nextAccepted()]);
    expect(res.status).toBe(400);
    expect(!accepted.ok && isBastionError(accepted.error, ErrorCode.BAD_STREAM_REQUEST)).toBe(true);
  });
});

describe('session bytes (raw ws client)', () => {
  it('sends [0x01] first, echoes stdin to stdout, ends with the Success Status and close 1000', async () => {
    const client = await TestClient.open(h.url(), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    const stdin = streams.stdin!;
    stdin.on('data', (d: Buffer) => streams.stdout!.write(d));
    stdin.once('end', () => void streams.finish(successStatus()));

    await client.waitFor((m) => m.length >= 1);
    expect(client.messages[0]).toEqual({ data: Buffer.from([0x01]), isBinary: true });

    client.send(frame(0, 'hello\n'));
    client.send(frame(0, 'world\n'));
    await client.waitFor(() => client.channel(1).toString() === 'hello\nworld\n');
    client.send([255, 0]);

    const close = await client.closed;
    expect(close.code).toBe(CloseCode.normal);
    const last = client.messages.at(-1)!;
    expect(last.data).toEqual(frame(3, SUCCESS_JSON));
    await streams.closed;
    expect(streams.failure).toBeUndefined();
  });

  it('initial frame goes to the lowest writable channel: stderr, else error', async () => {
    const c1 = await TestClient.open(h.url('stderr=true'), 'v5.channel.k8s.io');
    const s1 = await h.nextSession();
    await c1.waitFor((m) => m.length >= 1);
    expect(c1.messages[0]!.data).toEqual(Buffer.from([0x02]));
    s1.streams.destroy();
    const c2 = await TestClient.open(h.url('stdin=true'), 'v5.channel.k8s.io');
    const s2 = await h.nextSession();
    await c2.waitFor((m) => m.length >= 1);
    expect(c2.messages[0]!.data).toEqual(Buffer.from([0x03]));
    s2.streams.destroy();
  });

  it('writes stderr on channel 2 and a non-zero exit Status on channel 3', async () => {
    const client = await TestClient.open(h.url('stdout=true&stderr=true'), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    streams.stderr!.write('oops\n');
    streams.stdout!.write('out\n');
    await streams.finish(exitCodeStatus(3));
    const close = await client.closed;
    expect(close.code).toBe(1000);
    expect(client.messages.map((m) => m.data)).toEqual([frame(1), frame(2, 'oops\n'), frame(1, 'out\n'), frame(3, EXIT3_JSON)]);
  });

  it('with a TTY stderr is null and resize JSON arrives split or batched', async () => {
    const client = await TestClient.open(h.url('stdin=true&stdout=true&stderr=true&tty=true'), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    expect(streams.stderr).toBeNull();
    expect(streams.options.stderr).toBe(false);
    const sizes: unknown[] = [];
    streams.onResize((s) => sizes.push(s));
    client.send(frame(4, '{"Width":100,'));
    client.send(frame(4, '"Height":30}\n'));
    client.send(frame(4, '{"Width":101,"Height":31}\n{"Width":100,"Height":30}\n'));
    client.send(frame(0, 'x'));
    await once(streams.stdin!, 'readable');
    expect(sizes).toEqual([
      { width: 100, height: 30 },
      { width: 101, height: 31 },
      { width: 100, height: 30 },
    ]);
    await streams.finish(successStatus());
    expect((await client.closed).code).toBe(1000);
  });

  it('keeps sizes that arrive before anyone subscribes for the first subscriber', async () => {
    const client = await TestClient.open(h.url('stdin=true&stdout=true&tty=true'), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    client.send(frame(4, '{"Width":81,"Height":25}\n{"Width":80,"Height":24}\n'));
    client.send(frame(0, 'x'));
    await once(streams.stdin!, 'readable'); // the resize message has been handled by now
    const sizes: unknown[] = [];
    streams.onResize((s) => sizes.push(s));
    await Promise.resolve();
    expect(sizes).toEqual([
      { width: 81, height: 25 },
      { width: 80, height: 24 },
    ]);
    streams.destroy();
  });

  it('v4: no CLOSE signal ([255,0] is an unknown channel, discarded); stdin ends only when the socket closes', async () => {
    const client = await TestClient.open(h.url(), 'v4.channel.k8s.io');
    const { streams } = await h.nextSession();
    const chunks: string[] = [];
    let ended = false;
    streams.stdin!.on('data', (d: Buffer) => chunks.push(d.toString()));
    streams.stdin!.on('end', () => (ended = true));
    client.send([255, 0]);
    client.send(frame(0, 'after'));
    await new Promise<void>((resolve) => streams.stdin!.once('data', () => resolve()));
    expect(chunks).toEqual(['after']);
    expect(ended).toBe(false);
    expect(streams.failure).toBeUndefined();
    client.ws.close(1000);
    await once(streams.stdin!, 'end');
    await streams.closed;
  });

  it('v5: [255,0] ends stdin (Readable end) while the connection stays up', async () => {
    const client = await TestClient.open(h.url(), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    const stdin = streams.stdin!;
    const got: Buffer[] = [];
    stdin.on('data', (d: Buffer) => got.push(d));
    client.send(frame(0, 'abc'));
    client.send([255, 0]);
    await once(stdin, 'end');
    expect(Buffer.concat(got).toString()).toBe('abc');
    // Still open: output after stdin EOF is normal (e.g. `cat` flushing).
    streams.stdout!.write('tail');
    await client.waitFor(() => client.channel(1).toString() === 'tail');
    await streams.finish(successStatus());
    expect((await client.closed).code).toBe(1000);
  });

  it('base64 framing round trip, with text "1" as the initial frame', async () => {
    const client = await TestClient.open(h.url(), 'v4.base64.channel.k8s.io');
    const { streams } = await h.nextSession();
    streams.stdin!.on('data', (d: Buffer) => streams.stdout!.write(d));
    await client.waitFor((m) => m.length >= 1);
    expect(client.messages[0]).toEqual({ data: Buffer.from('1'), isBinary: false });
    client.send('0' + Buffer.from([0, 1, 2, 255, 10]).toString('base64'));
    await client.waitFor((m) => m.length >= 2);
    expect(client.messages[1]).toEqual({ data: Buffer.from('1AAEC/wo='), isBinary: false });
    await streams.finish(successStatus());
    expect((await client.closed).code).toBe(1000);
    expect(client.messages.at(-1)).toEqual({ data: Buffer.from('3' + Buffer.from(SUCCESS_JSON).toString('base64')), isBinary: false });
  });

  it('v1 (no subprotocol header) writes nothing on the error channel for success', async () => {
    const client = await TestClient.open(h.url('stdout=true'));
    const { streams } = await h.nextSession();
    await streams.finish(successStatus());
    expect((await client.closed).code).toBe(1000);
    expect(client.messages.map((m) => m.data)).toEqual([frame(1)]);
  });

  it('answers a ping with a pong carrying the same payload', async () => {
    const client = await TestClient.open(h.url(), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    const pong = once(client.ws, 'pong');
    client.ws.ping(Buffer.from('keepalive'));
    const [payload] = (await pong) as [Buffer];
    expect(payload.toString()).toBe('keepalive');
    streams.destroy();
    await streams.closed;
  });

  it('a client that goes away mid-session: closed resolves, stdout writes fail with CONNECTION_CLOSED', async () => {
    const client = await TestClient.open(h.url(), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    client.ws.terminate();
    await streams.closed;
    const err = await new Promise<Error | null | undefined>((resolve) => streams.stdout!.write('late', resolve));
    expect(isBastionError(err, ErrorCode.CONNECTION_CLOSED)).toBe(true);
    // v5 without CLOSE: an abort, not EOF.
    expect(streams.stdin!.destroyed).toBe(true);
    await streams.finish(successStatus()); // harmless after the fact
  });
});

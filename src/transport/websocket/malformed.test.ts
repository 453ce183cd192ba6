import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { successStatus } from '../../protocol/status.js';
import { ErrorCode } from '../../errors/index.js';
import { CloseCode } from './receiver.js';
import { TestClient, startHarness, type Harness } from './test-support.js';

const MAX_PAYLOAD = 1024;

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ maxPayload: MAX_PAYLOAD });
});
afterAll(async () => {
  await h.close();
});

interface Case {
  name: string;
  subprotocol: string;
  query?: string;
  message: Buffer | string;
  closeCode: number;
  errorCode: ErrorCode;
}

const cases: Case[] = [
  {
    name: 'bad base64',
    subprotocol: 'v4.base64.channel.k8s.io',
    message: '0%%%%',
    closeCode: CloseCode.invalidPayload,
    errorCode: ErrorCode.WS_BAD_MESSAGE,
  },
  {
    name: '3-byte CLOSE',
    subprotocol: 'v5.channel.k8s.io',
    message: Buffer.from([255, 0, 0]),
    closeCode: CloseCode.protocolError,
    errorCode: ErrorCode.WS_BAD_MESSAGE,
  },
  {
    name: 'CLOSE for channel 9',
    subprotocol: 'v5.channel.k8s.io',
    message: Buffer.from([255, 9]),
    closeCode: CloseCode.protocolError,
    errorCode: ErrorCode.WS_UNKNOWN_CHANNEL,
  },
  {
    name: 'bad resize JSON',
    subprotocol: 'v5.channel.k8s.io',
    query: 'stdin=true&stdout=true&tty=true',
    message: Buffer.from('\x04{"Width":"wide"}', 'latin1'),
    closeCode: CloseCode.invalidPayload,
    errorCode: ErrorCode.BAD_RESIZE,
  },
  {
    name: 'message beyond maxPayload',
    subprotocol: 'v5.channel.k8s.io',
    message: Buffer.alloc(MAX_PAYLOAD + 100),
    closeCode: CloseCode.messageTooBig,
    errorCode: ErrorCode.WS_BAD_MESSAGE,
  },
];

describe('malformed client input closes the connection with a documented code', () => {
  for (const c of cases) {
    it(`${c.name} -> ${c.closeCode} / ${c.errorCode}`, async () => {
      const client = await TestClient.open(h.url(c.query), c.subprotocol);
      const { streams } = await h.nextSession();
      const stdinError = new Promise<unknown>((resolve) => streams.stdin!.once('error', resolve));
      client.send(c.message);
      const close = await client.closed;
      expect(close.code).toBe(c.closeCode);
      // Our own refusals say why; ws's 1009 carries no reason text.
      if (c.closeCode !== CloseCode.messageTooBig) expect(close.reason).not.toBe('');
      await streams.closed;
      expect(streams.failure?.code).toBe(c.errorCode);
      expect(streams.failure?.details).toMatchObject({ closeCode: c.closeCode });
      // The typed error also reaches whoever reads stdin.
      expect(await stdinError).toBe(streams.failure);
      // finish() after a failure neither throws nor hangs.
      await streams.finish(successStatus());
    });
  }

  it('the server keeps serving after all that', async () => {
    const client = await TestClient.open(h.url(), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    streams.stdin!.on('data', (d: Buffer) => streams.stdout!.write(d));
    client.send(Buffer.from('\x00ok', 'latin1'));
    await client.waitFor(() => client.channel(1).toString() === 'ok');
    await streams.finish(successStatus());
    expect((await client.closed).code).toBe(CloseCode.normal);
  });

  it('a session nobody listens to for errors does not crash the process', async () => {
    const client = await TestClient.open(h.url(), 'v5.channel.k8s.io');
    const { streams } = await h.nextSession();
    // No 'error' listener of our own on stdin, and a write after the failure.
    client.send(Buffer.from([255, 0, 0]));
    await streams.closed;
    streams.stdout!.write('into the void');
    await new Promise((r) => setTimeout(r, 20));
    expect(streams.failure?.code).toBe(ErrorCode.WS_BAD_MESSAGE);
  });
});

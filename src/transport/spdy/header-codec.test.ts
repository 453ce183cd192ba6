import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { encodeHeaderBlock, parseHeaderBlock } from './header-block.js';
import { HeaderDeflater, HeaderInflater } from './header-codec.js';

const limits = { maxHeaderBlockSize: 64 * 1024, maxHeaderPairs: 128 };

// Golden bytes from protocol.md §2.3 (observed with kubectl and a Node peer).
const KUBECTL_FIRST = '78f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff'; // {streamtype: error}
const KUBECTL_SECOND = 'c22ac5565c92925f5a02000000ffff'; // {streamtype: stdout}

describe('header block (uncompressed)', () => {
  it('encodes u32 count and lengths, lower-case names, NUL-joined values', () => {
    const block = encodeHeaderBlock({ StreamType: 'error', multi: ['a', 'b'] });
    expect(block.toString('hex')).toBe(
      '00000002' + '0000000a' + Buffer.from('streamtype').toString('hex') + '00000005' + Buffer.from('error').toString('hex') +
        '00000005' + Buffer.from('multi').toString('hex') + '00000003' + '610062',
    );
    expect(parseHeaderBlock(block, 10)).toEqual({ streamtype: ['error'], multi: ['a', 'b'] });
  });

  it('keeps names off Object.prototype', () => {
    const parsed = parseHeaderBlock(encodeHeaderBlock({ ['__proto__']: 'x', constructor: 'y' }), 10);
    expect(Object.getPrototypeOf(parsed)).toBeNull();
    expect(parsed['__proto__']).toEqual(['x']);
  });

  const bad: [string, Buffer, string][] = [
    ['truncated count', Buffer.from('000000', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['truncated name', Buffer.from('000000010000000561', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['upper-case name', Buffer.from('00000001000000014100000000', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['empty name', Buffer.from('000000010000000000000000', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['duplicate name', Buffer.from('00000002' + '000000016100000000' + '000000016100000000', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['empty value among several', Buffer.from('00000001' + '0000000161' + '00000002' + '6100', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['trailing bytes', Buffer.from('00000000ff', 'hex'), 'SPDY_PROTOCOL_ERROR'],
    ['too many pairs', Buffer.from('ffffffff', 'hex'), 'SPDY_HEADER_BLOCK_TOO_LARGE'],
  ];
  it.each(bad)('rejects %s', (_name, block, code) => {
    expect(() => parseHeaderBlock(block, 128)).toThrow(expect.objectContaining({ code }));
  });

  it('refuses to encode what it could not decode', () => {
    expect(() => encodeHeaderBlock({ 'bad name': 'x' })).toThrow(TypeError);
    expect(() => encodeHeaderBlock({ a: 'x\0y' })).toThrow(TypeError);
  });
});

describe('header compression (one persistent zlib context per direction)', () => {
  it('compresses the first empty SYN_REPLY block and later ones to the golden bytes', async () => {
    const deflater = new HeaderDeflater();
    expect((await deflater.encode({})).toString('hex')).toBe('78f9e3c6a7c262000200000000ffff');
    expect((await deflater.encode({})).toString('hex')).toBe('020100000000ffff');
    expect((await deflater.encode({})).toString('hex')).toBe('020100000000ffff');
    deflater.close();
  });

  it('inflates kubectl’s first two SYN_STREAM blocks with one context', async () => {
    const inflater = new HeaderInflater(limits);
    expect(await inflater.decode(Buffer.from(KUBECTL_FIRST, 'hex'))).toEqual({ streamtype: ['error'] });
    expect(await inflater.decode(Buffer.from(KUBECTL_SECOND, 'hex'))).toEqual({ streamtype: ['stdout'] });
    inflater.close();
  });

  it('keeps order when many blocks are queued at once', async () => {
    const deflater = new HeaderDeflater();
    const inflater = new HeaderInflater(limits);
    const inputs = Array.from({ length: 50 }, (_, i) => ({ streamtype: `t${i}`, n: String(i).repeat(i) }));
    const blocks = await Promise.all(inputs.map((h) => deflater.encode(h)));
    const decoded = await Promise.all(blocks.map((b) => inflater.decode(b)));
    expect(decoded).toEqual(inputs.map((h) => ({ streamtype: [h.streamtype], n: [h.n] })));
    // Every block ends in a sync flush, so each one is a self-contained unit on the wire.
    for (const b of blocks) expect(b.subarray(-4).toString('hex')).toBe('0000ffff');
  });

  it('interoperates with a plain zlib stream preset with the dictionary', async () => {
    const deflater = new HeaderDeflater();
    const block = await deflater.encode({ streamtype: 'stdin' });
    const raw = zlib.inflateSync(block, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH });
    expect(parseHeaderBlock(raw, 10)).toEqual({ streamtype: ['stdin'] });
  });

  it('rejects corrupt zlib with SPDY_COMPRESSION_ERROR and stays failed', async () => {
    const inflater = new HeaderInflater(limits);
    await expect(inflater.decode(Buffer.from('78f9deadbeef00112233', 'hex'))).rejects.toMatchObject({ code: 'SPDY_COMPRESSION_ERROR' });
    await expect(inflater.decode(Buffer.from(KUBECTL_FIRST, 'hex'))).rejects.toMatchObject({ code: 'SPDY_COMPRESSION_ERROR' });
    inflater.close();
  });

  it('stops a decompression bomb at the header block limit', async () => {
    const deflater = new HeaderDeflater();
    const huge = await deflater.encode({ x: 'a'.repeat(1024 * 1024) });
    expect(huge.length).toBeLessThan(4096);
    const inflater = new HeaderInflater({ maxHeaderBlockSize: 64 * 1024, maxHeaderPairs: 10 });
    await expect(inflater.decode(huge)).rejects.toMatchObject({ code: 'SPDY_HEADER_BLOCK_TOO_LARGE' });
    inflater.close();
    deflater.close();
  });
});

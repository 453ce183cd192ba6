// Header compression for one SPDY connection: ONE zlib inflater for everything the peer sends and
// ONE deflater for everything we send, both preset with the SPDY/3 dictionary and kept for the
// connection's life, because every block continues the previous block's compression context.
//
// Node's zlib has no synchronous API over a persistent context (the *Sync functions close their
// handle), so each codec keeps a zlib stream and runs one block at a time through it. The zlib
// streams are created with `flush: Z_SYNC_FLUSH`, so each write ends in a sync flush: exactly one
// block per frame, which is what spdystream requires of our SYN_REPLY.
import zlib from 'node:zlib';
import { BastionError, ErrorCode } from '../../errors/index.js';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { encodeHeaderBlock, parseHeaderBlock, type HeaderInput, type HeaderMap } from './header-block.js';

/**
 * Runs buffers through a long-lived zlib stream one at a time and collects each one's output.
 * The stream is read in paused mode and drained when the write completes: at that point zlib has
 * pushed all output of that write, so nothing of one block can leak into the next.
 */
class SerialZlib {
  private tail: Promise<unknown> = Promise.resolve();
  private failure: BastionError | undefined;

  constructor(
    private readonly z: zlib.Inflate | zlib.Deflate,
    private readonly maxOutput: number,
    private readonly makeError: (cause: unknown) => BastionError,
  ) {
    // Errors surface per job; this listener only keeps an unexpected one from being unhandled.
    z.on('error', (err) => {
      this.failure ??= this.makeError(err);
    });
  }

  run(input: Buffer): Promise<Buffer> {
    const job = this.tail.then(() => this.process(input));
    this.tail = job.catch(() => undefined);
    return job;
  }

  close(): void {
    this.failure ??= new BastionError(ErrorCode.CONNECTION_CLOSED, 'header codec closed');
    this.z.destroy();
  }

  private process(input: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    const z = this.z;
    const maxOutput = this.maxOutput;
    return new Promise<Buffer>((resolve, reject) => {
      const out: Buffer[] = [];
      let size = 0;
      let settled = false;
      const settle = (err?: BastionError): void => {
        if (settled) return;
        settled = true;
        z.off('readable', drain);
        z.off('error', onError);
        if (err) {
          // The stream's state is unknown after a failed or abandoned block: poison it.
          this.failure ??= err;
          reject(err);
        } else {
          resolve(Buffer.concat(out, size));
        }
      };
      const drain = (): void => {
        for (let chunk = z.read() as Buffer | null; chunk !== null; chunk = z.read() as Buffer | null) {
          size += chunk.length;
          if (size > maxOutput) {
            settle(
              new BastionError(ErrorCode.SPDY_HEADER_BLOCK_TOO_LARGE, `header block exceeds ${maxOutput} bytes`, {
                limit: maxOutput,
              }),
            );
            return;
          }
          out.push(chunk);
        }
      };
      const onError = (err: unknown): void => settle(this.makeError(err));
      z.on('readable', drain);
      z.once('error', onError);
      z.write(input, (err) => {
        if (err) return onError(err);
        drain();
        settle();
      });
    });
  }
}

export interface HeaderDecoderLimits {
  maxHeaderBlockSize: number;
  maxHeaderPairs: number;
}

/** Decompresses and parses the peer's header blocks, in the order they were received. */
export class HeaderInflater {
  private readonly zlib: SerialZlib;

  constructor(private readonly limits: HeaderDecoderLimits) {
    this.zlib = new SerialZlib(
      zlib.createInflate({ dictionary: SPDY3_DICTIONARY, flush: zlib.constants.Z_SYNC_FLUSH }),
      limits.maxHeaderBlockSize,
      (cause) => new BastionError(ErrorCode.SPDY_COMPRESSION_ERROR, 'cannot decompress SPDY header block', undefined, { cause }),
    );
  }

  /** Rejects with SPDY_COMPRESSION_ERROR, SPDY_HEADER_BLOCK_TOO_LARGE or SPDY_PROTOCOL_ERROR. */
  async decode(compressed: Buffer): Promise<HeaderMap> {
    const block = await this.zlib.run(compressed);
    return parseHeaderBlock(block, this.limits.maxHeaderPairs);
  }

  close(): void {
    this.zlib.close();
  }
}

/** Encodes and compresses our header blocks; call in wire order (the context is shared). */
export class HeaderDeflater {
  private readonly zlib = new SerialZlib(
    // Level 9 is what spdystream uses (zlib.BestCompression); it also fixes the golden bytes.
    zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9, flush: zlib.constants.Z_SYNC_FLUSH }),
    Number.MAX_SAFE_INTEGER,
    (cause) => new BastionError(ErrorCode.SPDY_COMPRESSION_ERROR, 'cannot compress SPDY header block', undefined, { cause }),
  );

  /** Throws TypeError synchronously for headers that cannot be sent (bad names, NUL in values). */
  encode(headers: HeaderInput): Promise<Buffer> {
    return this.zlib.run(encodeHeaderBlock(headers));
  }

  close(): void {
    this.zlib.close();
  }
}

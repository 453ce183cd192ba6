// Cuts a tar byte stream, however it arrives chunked, into header blocks and entry content. The
// kubectl cp lister (pushed recorded bytes, synchronously) and the evidence reader (an async
// stream) both need this block arithmetic; with the framer they only decide what each entry means.
import { BLOCK, paddedSize } from './header.js';

export type TarFrame =
  /** A whole header block (zero blocks included). Valid until the next call to next(). */
  | { kind: 'header'; block: Buffer }
  /** Entry content (never the padding); `last` on the piece that completes it. */
  | { kind: 'data'; data: Buffer; last: boolean };

/**
 * After each header frame the caller says how many content bytes follow (content(size)); the
 * padding after them is skipped here.
 */
export class TarFramer {
  private chunk: Buffer = Buffer.alloc(0);
  private off = 0;
  private readonly header = Buffer.alloc(BLOCK);
  private fill = 0;
  private contentLeft = 0;
  private paddingLeft = 0;
  private taken = 0;

  /** Hands over the next bytes; frame them with next() before feeding more. */
  feed(chunk: Uint8Array): void {
    this.chunk = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.off = 0;
  }

  /** The next frame of the fed bytes; undefined when they are used up. */
  next(): TarFrame | undefined {
    while (this.off < this.chunk.length) {
      const avail = this.chunk.length - this.off;
      if (this.contentLeft > 0) {
        const n = Math.min(this.contentLeft, avail);
        const data = this.chunk.subarray(this.off, this.off + n);
        this.advance(n);
        this.contentLeft -= n;
        return { kind: 'data', data, last: this.contentLeft === 0 };
      }
      if (this.paddingLeft > 0) {
        const n = Math.min(this.paddingLeft, avail);
        this.advance(n);
        this.paddingLeft -= n;
        continue;
      }
      const n = Math.min(BLOCK - this.fill, avail);
      this.chunk.copy(this.header, this.fill, this.off, this.off + n);
      this.advance(n);
      this.fill += n;
      if (this.fill === BLOCK) {
        this.fill = 0;
        return { kind: 'header', block: this.header };
      }
    }
    return undefined;
  }

  /** After a header: `size` bytes of content follow it, then padding to the block. */
  content(size: number): void {
    this.contentLeft = size;
    this.paddingLeft = paddedSize(size) - size;
  }

  /** The fed bytes not framed yet, taken out (what follows the end of an archive). */
  rest(): Buffer {
    const rest = this.chunk.subarray(this.off);
    this.advance(rest.length);
    return rest;
  }

  /** True when the bytes so far end between entries (no partial header, content or padding). */
  get atBoundary(): boolean {
    return this.fill === 0 && this.contentLeft === 0 && this.paddingLeft === 0;
  }

  /** Bytes taken so far (headers, content, padding, rest()). */
  get consumed(): number {
    return this.taken;
  }

  private advance(n: number): void {
    this.off += n;
    this.taken += n;
  }
}

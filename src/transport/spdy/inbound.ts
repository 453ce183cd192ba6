// Turns the peer's byte stream into decoded frames, strictly in wire order. Framing is synchronous,
// header decompression is not (header-codec.ts), so frames queue behind a header block being
// inflated and socket reading is held meanwhile: the queue never grows past one socket chunk.
import { BastionError, ErrorCode } from '../../errors/index.js';
import { FrameReader } from './frame-reader.js';
import { hasHeaderBlock, type Frame, type HeaderBearingFrame } from './frames.js';
import { HeaderInflater } from './header-codec.js';
import type { HeaderMap } from './header-block.js';
import type { SpdyLimits } from './limits.js';
import type { ReadGate } from './read-gate.js';

type WithHeaders<F extends HeaderBearingFrame> = Omit<F, 'headerBlock'> & { headers: HeaderMap };

/** A frame as the connection sees it: header blocks decompressed and parsed. */
export type DecodedFrame =
  | Exclude<Frame, HeaderBearingFrame>
  | WithHeaders<Extract<Frame, { kind: 'SYN_STREAM' }>>
  | WithHeaders<Extract<Frame, { kind: 'SYN_REPLY' }>>
  | WithHeaders<Extract<Frame, { kind: 'HEADERS' }>>;

export interface InboundHandlers {
  frame(frame: DecodedFrame): void;
  /** The peer ended its side at a frame boundary, after every frame was delivered. */
  end(): void;
  /** The first framing, compression or header error; nothing is delivered afterwards. */
  error(err: BastionError): void;
}

export type InboundLimits = Pick<
  SpdyLimits,
  'maxDataFramePayload' | 'maxControlFramePayload' | 'maxHeaderBlockSize' | 'maxHeaderPairs'
>;

export class InboundFrames {
  private readonly reader: FrameReader;
  private readonly inflater: HeaderInflater;
  private readonly queue: Frame[] = [];
  private inflating = false;
  private ended = false;
  private stopped = false;

  constructor(
    limits: InboundLimits,
    private readonly handlers: InboundHandlers,
    private readonly gate?: ReadGate,
  ) {
    this.reader = new FrameReader(limits);
    this.inflater = new HeaderInflater(limits);
  }

  /** Bytes of a partial frame held by the reader. */
  get bufferedBytes(): number {
    return this.reader.bufferedBytes;
  }

  push(chunk: Buffer): void {
    if (this.stopped || this.ended) return;
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.fail(err);
      return;
    }
    for (const frame of frames) this.queue.push(frame);
    this.pump();
  }

  /** The peer will send nothing more. */
  end(): void {
    if (this.stopped || this.ended) return;
    this.ended = true;
    this.pump();
  }

  /** Stops delivering; releases the decompressor. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.inflater.close();
    this.gate?.release(this);
  }

  private pump(): void {
    while (!this.stopped && !this.inflating) {
      const frame = this.queue.shift();
      if (!frame) break;
      if (hasHeaderBlock(frame)) {
        this.inflate(frame);
        return;
      }
      this.deliver(frame);
    }
    if (!this.stopped && !this.inflating && this.queue.length === 0 && this.ended) {
      if (this.reader.midFrame) {
        this.fail(new BastionError(ErrorCode.SPDY_PROTOCOL_ERROR, 'connection closed in the middle of a frame'));
      } else {
        this.stopped = true;
        this.inflater.close();
        this.safely(() => this.handlers.end());
      }
    }
  }

  private inflate(frame: HeaderBearingFrame): void {
    this.inflating = true;
    this.gate?.hold(this);
    this.inflater.decode(frame.headerBlock).then(
      (headers) => {
        this.inflating = false;
        this.gate?.release(this);
        if (this.stopped) return;
        const { headerBlock: _ignored, ...rest } = frame;
        this.deliver({ ...rest, headers } as DecodedFrame);
        this.pump();
      },
      (err: unknown) => {
        this.inflating = false;
        this.fail(err);
      },
    );
  }

  private deliver(frame: DecodedFrame): void {
    this.safely(() => this.handlers.frame(frame));
  }

  private fail(err: unknown): void {
    if (this.stopped) return;
    this.stop();
    const error =
      err instanceof BastionError
        ? err
        : new BastionError(ErrorCode.SPDY_PROTOCOL_ERROR, 'cannot decode SPDY input', undefined, { cause: err });
    this.safely(() => this.handlers.error(error));
  }

  /** A handler bug must not unwind into a socket event handler; report it as our own failure. */
  private safely(call: () => void): void {
    try {
      call();
    } catch (err) {
      if (this.stopped) return;
      this.stop();
      this.handlers.error(
        err instanceof BastionError ? err : new BastionError(ErrorCode.INTERNAL, 'SPDY frame handler failed', undefined, { cause: err }),
      );
    }
  }
}

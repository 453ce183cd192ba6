// Terminal resize messages: one JSON object per message, Go field names, newline-terminated,
// e.g. `{"Width":100,"Height":30}\n` (client-go tools/remotecommand/resize.go).

export interface TerminalSize {
  width: number;
  height: number;
}

export function encodeResize(size: TerminalSize): Buffer {
  return Buffer.from(`${JSON.stringify({ Width: size.width, Height: size.height })}\n`, 'utf8');
}

/** Largest partial resize message kept while waiting for the rest of it. */
const MAX_PENDING_BYTES = 4096;

export class ResizeDecodeError extends Error {
  override readonly name = 'ResizeDecodeError';
}

/**
 * A streaming decoder: the server side reads resize messages as a stream of JSON values
 * (apiserver uses json.Decoder), so a message may be split across frames or several may
 * share one frame. Objects are delimited by balanced braces; whitespace between them is ignored.
 */
export class ResizeDecoder {
  private pending = '';

  /** Feeds bytes; returns every complete size they finish. Throws ResizeDecodeError on garbage. */
  push(chunk: Buffer | string): TerminalSize[] {
    this.pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    const sizes: TerminalSize[] = [];
    for (;;) {
      this.pending = this.pending.replace(/^\s+/, '');
      if (this.pending === '') break;
      if (this.pending[0] !== '{') throw new ResizeDecodeError('resize message does not start with "{"');
      const end = this.pending.indexOf('}');
      if (end < 0) {
        if (this.pending.length > MAX_PENDING_BYTES) throw new ResizeDecodeError('resize message too long');
        break;
      }
      sizes.push(parseSize(this.pending.slice(0, end + 1)));
      this.pending = this.pending.slice(end + 1);
    }
    return sizes;
  }
}

function parseSize(text: string): TerminalSize {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ResizeDecodeError('resize message is not JSON');
  }
  const { Width: width, Height: height } = (value ?? {}) as { Width?: unknown; Height?: unknown };
  if (!isUint16(width) || !isUint16(height)) throw new ResizeDecodeError('resize message needs Width and Height (0..65535)');
  return { width, height };
}

function isUint16(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

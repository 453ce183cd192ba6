// Streaming UTF-8 decoding, one decoder per channel: a character whose bytes are split across
// frames is held back until the rest arrives and then written whole, so the recorded text of a
// channel is exactly the decoding of the channel's concatenated bytes, however it was framed.
//
// WHATWG TextDecoder with `stream: true` does exactly this (incomplete trailing sequence kept,
// invalid bytes replaced by U+FFFD with the standard "maximal subpart" rule, and the result is the
// same as decoding everything at once; see utf8-decoder.test.ts). `ignoreBOM: true` keeps a
// leading U+FEFF: the default would silently drop the first three bytes of an output that starts
// with a BOM, and the recording would no longer be byte-exact.

export class Utf8StreamDecoder {
  private decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  /** Decodes a chunk; an incomplete sequence at its end is kept for the next call. */
  push(chunk: Uint8Array): string {
    if (chunk.length === 0) return '';
    return this.decoder.decode(chunk, { stream: true });
  }

  /** Ends the stream: a held-back incomplete sequence becomes U+FFFD. The decoder can be reused. */
  flush(): string {
    return this.decoder.decode();
  }
}

/** Independent decoders by channel name (stdout, stderr, stdin, ...): state never mixes. */
export class ChannelDecoders<C extends string = string> {
  private readonly decoders = new Map<C, Utf8StreamDecoder>();

  push(channel: C, chunk: Uint8Array): string {
    let d = this.decoders.get(channel);
    if (!d) {
      d = new Utf8StreamDecoder();
      this.decoders.set(channel, d);
    }
    return d.push(chunk);
  }

  /** Flushes every channel, in the order each was first used; only non-empty remainders. */
  flushAll(): Array<{ channel: C; text: string }> {
    const out: Array<{ channel: C; text: string }> = [];
    for (const [channel, d] of this.decoders) {
      const text = d.flush();
      if (text) out.push({ channel, text });
    }
    return out;
  }
}

/**
 * Length of the prefix of `bytes` that does not end inside a multi-byte character: an incomplete
 * sequence at the end (at most 3 bytes) is left for the next chunk of the channel. Says nothing
 * about validity (see `isUtf8` from node:buffer).
 */
export function completeUtf8Length(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let i = n - 1; i >= 0 && i >= n - 3; i--) {
    const b = bytes[i]!;
    if (b < 0x80) return n;
    if ((b & 0xc0) === 0x80) continue;
    return n - i < utf8SequenceLength(b) ? i : n;
  }
  return n;
}

/** The length of the sequence a lead byte announces (1 for ASCII and for bytes that cannot lead). */
export function utf8SequenceLength(lead: number): number {
  return lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
}

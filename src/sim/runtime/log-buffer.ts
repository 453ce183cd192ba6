// A container's log: complete lines with their timestamps, bounded in bytes, with followers.
import { EventEmitter } from 'node:events';

export interface LogLine {
  time: Date;
  bytes: Buffer;
}

const DEFAULT_MAX_BYTES = 1 << 20;

export class LogBuffer {
  private readonly lines: LogLine[] = [];
  private size = 0;
  private partial: Buffer = Buffer.alloc(0);
  private readonly followers = new EventEmitter();

  constructor(private readonly maxBytes = DEFAULT_MAX_BYTES) {
    this.followers.setMaxListeners(0);
  }

  append(chunk: Buffer): void {
    let data = this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
      this.push(data.subarray(0, nl + 1));
      data = data.subarray(nl + 1);
    }
    // A line that never ends still has to be bounded.
    if (data.length > this.maxBytes / 4) {
      this.push(data);
      data = Buffer.alloc(0);
    }
    this.partial = Buffer.from(data);
  }

  /** Flushes an unterminated last line (the process ended). */
  flush(): void {
    if (this.partial.length > 0) this.push(this.partial);
    this.partial = Buffer.alloc(0);
  }

  private push(bytes: Buffer): void {
    const line = { time: new Date(), bytes: Buffer.from(bytes) };
    this.lines.push(line);
    this.size += line.bytes.length;
    while (this.size > this.maxBytes && this.lines.length > 1) this.size -= this.lines.shift()!.bytes.length;
    this.followers.emit('line', line);
  }

  snapshot(tailLines?: number): LogLine[] {
    return tailLines === undefined ? [...this.lines] : this.lines.slice(Math.max(0, this.lines.length - tailLines));
  }

  follow(listener: (line: LogLine) => void): () => void {
    this.followers.on('line', listener);
    return () => this.followers.off('line', listener);
  }
}

// Progress for long exports on stderr: one line rewritten in place on a terminal, otherwise a plain
// line every few seconds (logs and CI keep a readable history, small exports print nothing).

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export interface ProgressOptions {
  write: (text: string) => void;
  /** Rewrite one line (a terminal) or print periodic lines. */
  tty: boolean;
  now?: () => number;
  /** Non-TTY: at most one line per this many ms (default 2000). */
  intervalMs?: number;
  /** TTY: at most one redraw per this many ms (default 100). */
  redrawMs?: number;
}

export class ProgressLine {
  private last = 0;
  private shown = false;
  private readonly now: () => number;

  constructor(private readonly opts: ProgressOptions) {
    this.now = opts.now ?? Date.now;
    this.last = this.now();
  }

  update(label: string, done: number, total: number | undefined): void {
    const t = this.now();
    const every = this.opts.tty ? (this.opts.redrawMs ?? 100) : (this.opts.intervalMs ?? 2000);
    const finished = total !== undefined && done >= total;
    if (t - this.last < every && !(this.opts.tty && finished)) return;
    this.last = t;
    const pct = total !== undefined && total > 0 ? ` (${Math.min(100, Math.floor((done / total) * 100))}%)` : '';
    const text = `${label}: ${formatBytes(done)}${total !== undefined ? ` / ${formatBytes(total)}` : ''}${pct}`;
    if (this.opts.tty) {
      this.opts.write(`\r\x1b[K${text}`);
      this.shown = true;
    } else {
      this.opts.write(`${text}\n`);
    }
  }

  /** Clears the terminal line (nothing to do for plain lines). */
  done(): void {
    if (this.opts.tty && this.shown) this.opts.write('\r\x1b[K');
    this.shown = false;
  }
}

// Drives a real terminal: kubectl only asks for a TTY when its stdin is one.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export class TmuxSession {
  private readonly socket = `kb-${randomBytes(4).toString('hex')}`;
  private readonly name = 'main';

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** Starts `command` (a shell command line) in a detached session of the given size. */
  start(command: string, size: { width: number; height: number }, env: Record<string, string> = {}): void {
    const exports = Object.entries(env).map(([k, v]) => `export ${k}='${v.replace(/'/g, "'\\''")}'; `).join('');
    this.tmux('-f', '/dev/null', 'new-session', '-d', '-s', this.name, '-x', String(size.width), '-y', String(size.height), `${exports}${command}; echo "EXIT=$?"; sleep 600`);
  }

  /** Types text literally; `enter` adds a carriage return as a terminal would. */
  type(text: string, enter = true): void {
    this.tmux('send-keys', '-t', this.name, '-l', text);
    if (enter) this.tmux('send-keys', '-t', this.name, 'Enter');
  }

  resize(size: { width: number; height: number }): void {
    this.tmux('resize-window', '-t', this.name, '-x', String(size.width), '-y', String(size.height));
  }

  screen(): string {
    return this.tmux('capture-pane', '-p', '-J', '-t', this.name, '-S', '-200');
  }

  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      const match = pattern.exec(screen);
      if (match) return match;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // already gone
    }
  }
}

/**
 * In a shell running in `term` (started at 100x30): `stty size` shows the size, follows a resize to
 * 120x40, and `exit CODE` ends the session with that code.
 */
export async function expectShellFollowsResize(term: TmuxSession, exitCode: number): Promise<void> {
  await term.waitFor(/[#$] $/m);
  term.type('stty size');
  await term.waitFor(/^30 100$/m);
  term.resize({ width: 120, height: 40 });
  await new Promise((r) => setTimeout(r, 300));
  term.type('stty size');
  await term.waitFor(/^40 120$/m);
  term.type(`exit ${exitCode}`);
  await term.waitFor(new RegExp(`EXIT=${exitCode}`));
}

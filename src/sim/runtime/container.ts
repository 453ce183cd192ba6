// A running container: its long-lived main process, restarted when it exits (restartPolicy Always),
// its log, and the sessions attached to it.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { LogBuffer } from './log-buffer.js';
import { spawnProcess, type ContainerProcess, type ProcessSpec } from './process.js';
import type { TerminalSize } from '../../protocol/resize.js';

export interface ContainerSpec {
  name: string;
  argv: string[];
  tty: boolean;
  stdin: boolean;
  /** false for an ephemeral container: once its process exits it stays exited. */
  restart?: boolean;
}

export interface ContainerState {
  restartCount: number;
  startedAt: Date;
  running: boolean;
}

/** Output of the main process, fanned out to attached sessions. */
export interface AttachOutput {
  stream: 'stdout' | 'stderr';
  chunk: Buffer;
}

const RESTART_DELAY_MS = 200;

export class Container extends EventEmitter<{
  output: [AttachOutput];
  exit: [number];
  state: [ContainerState];
}> {
  readonly log = new LogBuffer();
  private process: ContainerProcess | undefined;
  private stopped = false;
  private _state: ContainerState = { restartCount: 0, startedAt: new Date(), running: false };
  private lastExit: { code: number; at: Date } | undefined;

  constructor(
    readonly spec: ContainerSpec,
    private readonly base: Omit<ProcessSpec, 'argv' | 'tty'>,
  ) {
    super();
    this.setMaxListeners(0);
  }

  get state(): ContainerState {
    return { ...this._state };
  }

  /** How the main process last ended, if it has. */
  get terminated(): { code: number; at: Date } | undefined {
    return this.lastExit;
  }

  async start(): Promise<void> {
    if (this.stopped) return;
    const proc = await spawnProcess({ ...this.base, argv: this.spec.argv, tty: this.spec.tty, dieWithSim: true });
    this.process = proc;
    this._state = { ...this._state, startedAt: new Date(), running: true };
    this.emit('state', this.state);
    this.pump(proc.stdout, 'stdout');
    if (proc.stderr) this.pump(proc.stderr, 'stderr');
    void proc.exit.then((code) => this.onExit(code));
  }

  private pump(stream: Readable, name: 'stdout' | 'stderr'): void {
    stream.on('data', (chunk: Buffer) => {
      this.log.append(chunk);
      this.emit('output', { stream: name, chunk });
    });
  }

  private onExit(code: number): void {
    this.process = undefined;
    this.log.flush();
    this._state = { ...this._state, running: false };
    this.lastExit = { code, at: new Date() };
    this.emit('exit', code);
    this.emit('state', this.state);
    if (this.stopped || this.spec.restart === false) return;
    this._state.restartCount += 1;
    setTimeout(() => {
      this.start().catch(() => this.emit('exit', 127));
    }, RESTART_DELAY_MS).unref();
  }

  /** Input from an attached session. */
  writeInput(chunk: Buffer): void {
    if (this.spec.stdin) this.process?.stdin?.write(chunk);
  }

  resize(size: TerminalSize): void {
    this.process?.resize(size);
  }

  get running(): boolean {
    return this.process !== undefined;
  }

  stop(): void {
    this.stopped = true;
    this.process?.kill('SIGKILL');
  }
}

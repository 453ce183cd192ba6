// A container process: a real OS process, under a pseudo-terminal (node-pty) when a TTY is asked
// for, a plain child process otherwise. Both look the same to callers: byte streams plus an exit code.
import { spawn as spawnChild } from 'node:child_process';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import * as pty from 'node-pty';
import type { TerminalSize } from '../../protocol/resize.js';
import { DEFAULT_TERMINAL } from '../../protocol/constants.js';

export interface ProcessSpec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  tty: boolean;
  size?: TerminalSize;
  /** Run as this user instead of the sim's own (the sim started as root runs pods unprivileged). */
  user?: RunAs;
  /**
   * False: the process's stdin / stderr is /dev/null, not a pipe the sim holds open (an exec that
   * asked for no such stream gets none, as from the kubelet). Without a TTY only; default true.
   */
  stdin?: boolean;
  stderr?: boolean;
  /**
   * A container's main process: the kernel ends it when the sim's process dies (see underSetpriv).
   * Not asked for exec sessions: an extra exec of setpriv each costs ~4 ms of CPU here, which the
   * bench's 1,400 `cat`s would pay under load (a `cat` ends with the sim anyway, at its stdin's end).
   */
  dieWithSim?: boolean;
}

/** An unprivileged identity for pod processes. */
export interface RunAs {
  uid: number;
  gid: number;
}

export interface ContainerProcess {
  readonly pid: number;
  /** With a TTY this carries everything the terminal shows. */
  readonly stdout: Readable;
  /** Null with a TTY (the terminal merges stderr into stdout) or when spawned with stderr: false. */
  readonly stderr: Readable | null;
  /** Null when spawned with stdin: false. */
  readonly stdin: Writable | null;
  resize(size: TerminalSize): void;
  kill(signal?: NodeJS.Signals): void;
  /** Exit code (128 + signal number when killed), once all output has been read. */
  readonly exit: Promise<number>;
}

export class SpawnError extends Error {
  override readonly name = 'SpawnError';
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export function spawnProcess(spec: ProcessSpec): Promise<ContainerProcess> {
  const [file, ...args] = spec.argv;
  if (file === undefined || file === '') return Promise.reject(new SpawnError('no command given'));
  return spec.tty ? spawnPty(file, args, spec) : spawnPlain(file, args, spec);
}

function spawnPlain(requested: string, requestedArgs: string[], spec: ProcessSpec): Promise<ContainerProcess> {
  // Look the command up first, as runc does: another user's spawn failure is not always ENOENT,
  // and under setpriv a missing command would only be setpriv's exit status.
  const pdeath = PDEATHSIG && spec.dieWithSim === true;
  if ((spec.user || pdeath) && lookPath(requested, spec.env.PATH, spec.cwd) === undefined) {
    return Promise.reject(new SpawnError(`exec: "${requested}": executable file not found in $PATH`));
  }
  const { file, args } = pdeath ? underSetpriv(requested, requestedArgs, [], true) : { file: requested, args: requestedArgs };
  return new Promise((resolve, reject) => {
    // Own process group, so killing the container also ends whatever it started.
    // With uid/gid set, libuv also drops the supplementary groups (setgroups(0)) before exec.
    const child = spawnChild(file, args, {
      cwd: spec.cwd,
      env: spec.env,
      stdio: [spec.stdin === false ? 'ignore' : 'pipe', 'pipe', spec.stderr === false ? 'ignore' : 'pipe'],
      detached: true,
      ...(spec.user ? { uid: spec.user.uid, gid: spec.user.gid } : {}),
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      reject(new SpawnError(`exec: "${requested}": ${err.code === 'ENOENT' ? 'executable file not found in $PATH' : err.message}`));
    });
    child.once('spawn', () => {
      child.stdin?.on('error', () => {}); // EPIPE when the process exits before reading its stdin
      const exit = new Promise<number>((done) => {
        child.once('close', (code, signal) => done(code ?? 128 + (SIGNALS[signal ?? ''] ?? 1)));
      });
      resolve({
        pid: child.pid ?? -1,
        stdout: child.stdout!, // always a pipe
        stderr: child.stderr,
        stdin: child.stdin,
        resize: () => {},
        kill: (signal = 'SIGKILL') => {
          if (child.pid !== undefined && child.exitCode === null) killGroup(child.pid, signal);
        },
        exit,
      });
    });
  });
}

/** setpriv(1) from util-linux: drops the supplementary groups too, which node-pty's uid/gid does not. */
const SETPRIV = '/usr/bin/setpriv';

/**
 * Whether container processes get the parent-death signal (see underSetpriv). The kernel sends it
 * when the *thread* that forked the process exits, not the process: child_process and node-pty
 * fork on the calling JS thread, so only the main thread (alive as long as the process) may use it;
 * a sim on a worker thread would have its pods killed when the worker ends.
 */
const PDEATHSIG = isMainThread && existsSync(SETPRIV);

/**
 * `file` under setpriv: with `ids` (a change of user), and with the parent-death signal when
 * `pdeath` (and PDEATHSIG). That signal gives a container process SIGKILL when the sim's process
 * dies: a sim killed with SIGKILL (or the bastion around an embedded one) had no chance to end its
 * pods, which then ran on, orphaned, holding their pod addresses. setpriv sets it after any change of user (a
 * change clears it) and it is kept across setpriv's exec of the command, which also keeps setpriv's
 * pid, process group and exit status. Only the container's own process; what it started is its
 * process group's.
 */
function underSetpriv(file: string, args: string[], ids: string[], pdeath: boolean): { file: string; args: string[] } {
  return { file: SETPRIV, args: [...(pdeath && PDEATHSIG ? ['--pdeathsig', 'KILL'] : []), ...ids, '--', file, ...args] };
}

/** The executable `file` names, looked up on PATH as the container runtime does; undefined if none. */
function lookPath(file: string, path: string | undefined, cwd: string): string | undefined {
  const candidates = file.includes('/') ? [resolve(cwd, file)] : (path ?? '').split(delimiter).filter(isAbsolute).map((dir) => join(dir, file));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * What the pty runs: under setpriv when it switches user (and clears groups) or gives a main
 * process the parent-death signal (see underSetpriv; a terminal under setpriv anyway gets it too,
 * at no cost), after the command has been found on PATH (so a missing one is reported as before,
 * not as setpriv's exit status).
 */
function ptyCommand(file: string, args: string[], spec: ProcessSpec): { file: string; args: string[]; ids?: RunAs } | SpawnError {
  const pdeath = PDEATHSIG && spec.dieWithSim === true;
  if (!spec.user && !pdeath) return { file, args };
  if (lookPath(file, spec.env.PATH, spec.cwd) === undefined) return new SpawnError(`exec: "${file}": executable file not found in $PATH`);
  if (!spec.user) return underSetpriv(file, args, [], true);
  const { uid, gid } = spec.user;
  if (existsSync(SETPRIV)) return underSetpriv(file, args, [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups'], true);
  return { file, args, ids: spec.user };
}

function spawnPty(requested: string, requestedArgs: string[], spec: ProcessSpec): Promise<ContainerProcess> {
  const size = spec.size ?? DEFAULT_TERMINAL;
  const command = ptyCommand(requested, requestedArgs, spec);
  if (command instanceof SpawnError) return Promise.reject(command);
  const { file, args } = command;
  let term: pty.IPty;
  try {
    term = pty.spawn(file, args, {
      ...(command.ids ? { uid: command.ids.uid, gid: command.ids.gid } : {}),
      name: spec.env.TERM ?? 'xterm-256color',
      cols: Math.max(1, size.width),
      rows: Math.max(1, size.height),
      cwd: spec.cwd,
      env: spec.env,
      encoding: null,
    } as pty.IPtyForkOptions);
  } catch (err) {
    return Promise.reject(new SpawnError(`exec: "${requested}": ${(err as Error).message}`));
  }
  // node-pty delivers Buffers with encoding:null; pausing the pty applies backpressure to the process.
  const stdout = new Readable({
    read() {
      term.resume();
    },
  });
  term.onData((data: string | Buffer) => {
    if (!stdout.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : data)) term.pause();
  });
  let exited = false;
  const exit = new Promise<number>((done) => {
    // node-pty emits exit only after the terminal's output has been drained.
    term.onExit(({ exitCode, signal }) => {
      exited = true;
      stdout.push(null);
      done(signal ? 128 + signal : exitCode);
    });
  });
  const stdin = new Writable({
    write(chunk: Buffer, _enc, callback) {
      if (!exited) term.write(chunk as unknown as string);
      callback();
    },
  });
  return Promise.resolve({
    pid: term.pid,
    stdout,
    stderr: null,
    stdin,
    resize: (s: TerminalSize) => {
      if (!exited && s.width > 0 && s.height > 0) term.resize(s.width, s.height);
    },
    kill: (signal = 'SIGKILL') => {
      if (!exited) killGroup(term.pid, signal);
    },
    exit,
  });
}

/** Signals the whole process group led by `pid` (both spawn paths make the child a group leader). */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

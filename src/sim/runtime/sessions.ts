// Wires an accepted remote-command session to a container: exec starts a new process, attach
// joins the container's main process. Both end with the protocol's Status as data.
import type { Writable } from 'node:stream';
import type { ServerStreams } from '../../protocol/streams.js';
import type { TerminalSize } from '../../protocol/resize.js';
import { apiStatus, exitCodeStatus } from '../../protocol/status.js';
import { spawnProcess, SpawnError, type ContainerProcess, type ProcessSpec } from './process.js';
import type { Container } from './container.js';

/** How long a TTY exec waits for the client's first size before starting the process. */
const FIRST_RESIZE_WAIT_MS = 1000;

function firstResize(streams: ServerStreams): Promise<TerminalSize | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      off();
      resolve(undefined);
    }, FIRST_RESIZE_WAIT_MS);
    const off = streams.onResize((size) => {
      clearTimeout(timer);
      off();
      resolve(size);
    });
    void streams.closed.then(() => {
      clearTimeout(timer);
      off();
      resolve(undefined);
    });
  });
}

/** Copies a process output into a session stream with backpressure; resolves when it has ended. */
function relay(from: NodeJS.ReadableStream, to: Writable | null): Promise<void> {
  return new Promise((resolve) => {
    if (!to) {
      from.on('data', () => {});
      from.on('end', resolve);
      from.on('error', () => resolve());
      return;
    }
    from.pipe(to, { end: false });
    from.on('end', resolve);
    from.on('error', () => resolve());
  });
}

export async function runExec(
  streams: ServerStreams,
  spec: Omit<ProcessSpec, 'tty' | 'size'>,
  track: (end: () => void) => () => void,
): Promise<void> {
  const tty = streams.options.tty;
  const size = tty ? await firstResize(streams) : undefined;
  let proc: ContainerProcess;
  try {
    // Streams the client did not ask for are /dev/null: no pipe (and no fd in the sim) for them.
    proc = await spawnProcess({ ...spec, tty, ...(size ? { size } : {}), stdin: streams.options.stdin, stderr: streams.options.stderr });
  } catch (err) {
    const message = err instanceof SpawnError ? err.message : String(err);
    await streams.finish(apiStatus(500, 'InternalError', `Internal error occurred: error executing command in container: ${message}`));
    return;
  }
  const untrack = track(() => streams.destroy(new Error('pod deleted')));
  let clientGone = false;
  void streams.closed.then(() => {
    clientGone = true;
    proc.kill('SIGKILL');
  });
  streams.onResize((s) => proc.resize(s));
  if (streams.stdin && proc.stdin) streams.stdin.pipe(proc.stdin);
  else if (!tty) proc.stdin?.end();

  const outputs = [relay(proc.stdout, streams.stdout)];
  if (proc.stderr) outputs.push(relay(proc.stderr, streams.stderr));
  const code = await proc.exit;
  await Promise.all(outputs);
  untrack();
  if (!clientGone) await streams.finish(exitCodeStatus(code));
}

export async function runAttach(
  streams: ServerStreams,
  container: Container,
  track: (end: () => void) => () => void,
): Promise<void> {
  const write = (to: Writable | null, chunk: Buffer): void => {
    // A viewer that cannot keep up is cut rather than allowed to buffer without bound.
    if (!to) return;
    if (to.writableLength > 8 * 1024 * 1024) streams.destroy(new Error('attached client too slow'));
    else to.write(chunk);
  };
  const onOutput = ({ stream, chunk }: { stream: 'stdout' | 'stderr'; chunk: Buffer }): void => {
    write(stream === 'stderr' && streams.stderr ? streams.stderr : streams.stdout, chunk);
  };
  let exitCode: number | undefined;
  let onExit: (code: number) => void = () => {};
  const ended = new Promise<void>((resolve) => {
    onExit = (code) => {
      exitCode = code;
      resolve();
    };
    container.once('exit', onExit);
    void streams.closed.then(() => resolve());
  });
  container.on('output', onOutput);
  streams.onResize((s) => container.resize(s));
  streams.stdin?.on('data', (chunk: Buffer) => container.writeInput(chunk));
  const untrack = track(() => streams.destroy(new Error('pod deleted')));
  await ended;
  container.off('output', onOutput);
  container.off('exit', onExit);
  untrack();
  if (exitCode !== undefined) await streams.finish(exitCodeStatus(exitCode));
}

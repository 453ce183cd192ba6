// pods/log: the container's output, optionally followed, with tailLines/timestamps/limitBytes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Container } from '../runtime/container.js';
import type { LogLine } from '../runtime/log-buffer.js';

export function serveLogs(req: IncomingMessage, res: ServerResponse, container: Container, params: URLSearchParams): void {
  const tail = params.get('tailLines');
  const tailLines = tail !== null && /^\d+$/.test(tail) ? Number(tail) : undefined;
  const timestamps = params.get('timestamps') === 'true';
  const follow = params.get('follow') === 'true';
  const format = (line: LogLine): Buffer =>
    timestamps ? Buffer.concat([Buffer.from(`${line.time.toISOString()} `), line.bytes]) : line.bytes;

  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  for (const line of container.log.snapshot(tailLines)) res.write(format(line));
  if (!follow) {
    res.end();
    return;
  }
  res.flushHeaders();
  const unfollow = container.log.follow((line) => res.write(format(line)));
  const onExit = (): void => stop();
  const stop = (): void => {
    unfollow();
    container.off('exit', onExit);
    if (!res.writableEnded) res.end();
  };
  // Like the kubelet, a follow ends when the container it follows exits.
  container.on('exit', onExit);
  req.on('close', stop);
  res.on('close', stop);
}

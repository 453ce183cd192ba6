// Every request the simulated cluster sees, so tests can prove what did (or did not) reach it.
import { appendFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';

export interface LoggedRequest {
  time: string;
  method: string;
  path: string;
  upgrade?: string;
  /**
   * The streaming transport an upgrade asked for: `spdy` (POST, Upgrade: SPDY/3.1), `websocket-tunnel`
   * (GET offering a `SPDY/3.1+…` subprotocol: port-forward in kubectl 1.31+) or `websocket`.
   */
  transport?: 'spdy' | 'websocket' | 'websocket-tunnel';
  /** Header names and values as received; the Authorization value is redacted. */
  headers: Record<string, string | string[]>;
}

export class RequestLog {
  readonly entries: LoggedRequest[] = [];

  constructor(
    private readonly file?: string,
    private readonly max = 10_000,
  ) {}

  record(req: IncomingMessage): void {
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headersDistinct)) {
      if (value === undefined) continue;
      headers[name] = name === 'authorization' ? '<redacted>' : value.length === 1 ? value[0]! : value;
    }
    const entry: LoggedRequest = {
      time: new Date().toISOString(),
      method: req.method ?? '',
      path: req.url ?? '',
      ...(req.headers.upgrade ? { upgrade: req.headers.upgrade, transport: transportOf(req) } : {}),
      headers,
    };
    this.entries.push(entry);
    if (this.entries.length > this.max) this.entries.shift();
    if (this.file) appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
  }
}

function transportOf(req: IncomingMessage): LoggedRequest['transport'] {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return 'spdy';
  const offered = (req.headersDistinct['sec-websocket-protocol'] ?? []).flatMap((line) => line.split(',')).map((s) => s.trim());
  return offered.some((name) => name.startsWith('SPDY/3.1+')) ? 'websocket-tunnel' : 'websocket';
}

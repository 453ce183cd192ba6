import { BastionError, ErrorCode } from '../errors/index.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `HOST:PORT` or `[V6]:PORT`, naming the flag in errors. */
export function parseListen(flag: string, value: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw new BastionError(ErrorCode.USAGE, `${flag}: expected HOST:PORT (e.g. 127.0.0.1:6443), got "${value}"`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

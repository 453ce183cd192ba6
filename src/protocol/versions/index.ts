import { v1 } from './v1.js';
import { v2 } from './v2.js';
import { v3 } from './v3.js';
import { v4 } from './v4.js';
import { v5 } from './v5.js';
import type { ChannelProtocol } from './types.js';

export type { ChannelProtocol } from './types.js';
export { v1, v2, v3, v4, v5 };

/** Every version, most preferred first. */
export const ALL_VERSIONS: readonly ChannelProtocol[] = [v5, v4, v3, v2, v1];

export function protocolByName(name: string): ChannelProtocol | undefined {
  return ALL_VERSIONS.find((p) => p.name === name);
}

/**
 * Splits offered protocol header values, which clients send either as repeated header lines or
 * as one comma-separated line (or both), into a clean ordered list.
 */
export function parseOffer(values: string | readonly string[] | undefined): string[] {
  if (values === undefined) return [];
  const lines = typeof values === 'string' ? [values] : values;
  return lines.flatMap((line) => line.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/** Server-side negotiation: the first protocol the client offers that the server supports. */
export function negotiate(offered: readonly string[], supported: readonly string[]): string | undefined {
  return offered.find((name) => supported.includes(name));
}

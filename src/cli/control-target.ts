// Where the CLI's API commands (approvals, export) reach the control endpoint, and as whom:
// flags first, then KUBE_BASTION_URL / KUBE_BASTION_TOKEN / KUBE_BASTION_CA.
import { readFileSync } from 'node:fs';
import { BastionError, ErrorCode } from '../errors/index.js';

export const DEFAULT_CONTROL_URL = 'http://127.0.0.1:8080';

/** The flags every control-API command takes (parseArgs options): where, as whom, how to print, help. */
export const CONTROL_API_FLAGS = {
  server: { type: 'string' },
  token: { type: 'string' },
  ca: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface ControlTarget {
  server: URL;
  token: string;
  /** PEM of the CA for an https control endpoint with a private CA. */
  ca: string | undefined;
}

export function resolveControlTarget(
  flags: { server?: string | undefined; token?: string | undefined; ca?: string | undefined },
  env: Record<string, string | undefined>,
  tokenHint: string,
): ControlTarget {
  const usage = (message: string) => new BastionError(ErrorCode.USAGE, message);
  const serverText = flags.server ?? env['KUBE_BASTION_URL'] ?? DEFAULT_CONTROL_URL;
  let server: URL;
  try {
    server = new URL(serverText);
  } catch {
    server = new URL('invalid:');
  }
  if (server.protocol !== 'http:' && server.protocol !== 'https:') throw usage(`--server ${JSON.stringify(serverText)}: give an http:// or https:// URL`);
  const token = flags.token ?? env['KUBE_BASTION_TOKEN'];
  if (!token) throw usage(`no user token: pass --token TOKEN or set KUBE_BASTION_TOKEN (${tokenHint})`);
  const caFile = flags.ca ?? env['KUBE_BASTION_CA'];
  let ca: string | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      throw usage(`--ca ${caFile}: ${(e as Error).message}`);
    }
  }
  return { server, token, ca };
}

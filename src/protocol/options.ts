// Exec/attach query parameters (PodExecOptions / PodAttachOptions). kubectl sends sorted keys,
// `+` for spaces and omits false values; client-node sends explicit `false` and `%20`; the Python
// client `True`/`False`. URLSearchParams handles the encodings; booleans are read as the API server
// reads them (query.ts). The bastion's request parser refuses every spelling where a client could
// mean something else before this runs on an agent's query.
import { apiServerBool } from './query.js';
import type { StreamOptions } from './streams.js';

export interface RemoteCommandRequest extends StreamOptions {
  /** argv of an exec; empty for attach. */
  command: string[];
  /** Empty when the client did not name one. */
  container: string;
}

function flag(params: URLSearchParams, key: string): boolean {
  return apiServerBool(params.getAll(key));
}

export function parseRemoteCommandQuery(params: URLSearchParams): RemoteCommandRequest {
  return {
    command: params.getAll('command'),
    container: params.get('container') ?? '',
    stdin: flag(params, 'stdin'),
    stdout: flag(params, 'stdout'),
    stderr: flag(params, 'stderr'),
    tty: flag(params, 'tty'),
  };
}

/** With a TTY, stderr is merged into stdout: the stream is never set up (kubectl omits it too). */
export function effectiveStreamOptions(req: StreamOptions): StreamOptions {
  return { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr && !req.tty, tty: req.tty };
}

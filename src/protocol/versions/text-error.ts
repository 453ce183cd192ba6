import { exitCodeStatus, successStatus, type Status } from '../status.js';

// v1-v3 error streams carry free text: nothing on success, the error message otherwise.

export function encodeTextError(status: Status): Buffer {
  return status.status === 'Success' ? Buffer.alloc(0) : Buffer.from(status.message ?? 'error', 'utf8');
}

export function decodeTextError(bytes: Buffer): Status {
  if (bytes.length === 0) return successStatus();
  const message = bytes.toString('utf8');
  // Old kubelets report exit codes only inside the text.
  const match = /exit code (\d{1,3})$/.exec(message);
  if (match) return { ...exitCodeStatus(Number(match[1])), message };
  return { metadata: {}, status: 'Failure', message };
}

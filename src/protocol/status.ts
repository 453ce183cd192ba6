// metav1.Status: the one shape every refusal and every end-of-session takes on the wire.

export interface StatusCause {
  /** Serialised under `reason` (StatusCause.Type has json tag "reason"). */
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind?: 'Status';
  apiVersion?: 'v1';
  metadata: Record<string, unknown>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code?: number;
}

/** The exact success Status the kubelet writes at the end of a stream session. */
export function successStatus(): Status {
  return { metadata: {}, status: 'Success' };
}

/** The Status that carries a non-zero exit code (what kubectl turns into its own exit code). */
export function exitCodeStatus(exitCode: number): Status {
  if (exitCode === 0) return successStatus();
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** A Status for a REST answer (kind/apiVersion set, as kube-apiserver sends them). */
export function apiStatus(code: number, reason: string, message: string, details?: StatusDetails): Status {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

/**
 * The exit code a Status stands for: 0 for Success, the ExitCode cause for NonZeroExitCode,
 * null for any other failure (kubectl prints the message and exits 1).
 */
export function exitCodeOf(status: Status): number | null {
  if (status.status === 'Success') return 0;
  if (status.reason !== 'NonZeroExitCode') return null;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = cause?.message === undefined ? NaN : Number(cause.message);
  return Number.isInteger(code) && code >= 0 && code <= 255 ? code : null;
}

export function encodeStatus(status: Status): Buffer {
  return Buffer.from(JSON.stringify(status), 'utf8');
}

/** Parses a Status from the wire; throws on anything that is not a Status object. */
export function decodeStatus(bytes: Buffer | string): Status {
  const value: unknown = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  if (
    typeof value !== 'object' ||
    value === null ||
    ((value as Status).status !== 'Success' && (value as Status).status !== 'Failure')
  ) {
    throw new TypeError('not a metav1.Status');
  }
  const status = value as Status;
  if (typeof status.metadata !== 'object' || status.metadata === null) status.metadata = {};
  return status;
}

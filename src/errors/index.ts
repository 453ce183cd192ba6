// One error type with stable codes (the table is codes.ts). Callers branch on `code`, never on
// message text; a client-facing field travels as `field`, an upstream's own answer as `status`.
import { apiStatus, type Status, type StatusDetails } from '../protocol/status.js';
import { codeForHttpStatus, ErrorCode, httpStatusOf, statusReasonOf } from './codes.js';

export { ERROR_CODES, ErrorCode, codeForHttpStatus, httpStatusOf, statusReasonOf, type StatusReason } from './codes.js';

/** The metav1.Status for a code: its HTTP status and reason from the table, with this message. */
export function statusFor(code: ErrorCode, message: string, details?: StatusDetails): Status {
  return apiStatus(httpStatusOf(code), statusReasonOf(code), message, details);
}

export interface BastionErrorOptions {
  cause?: unknown;
  /** The request field at fault (control API bodies and queries), e.g. `ttlSeconds`. */
  field?: string;
}

export class BastionError extends Error {
  override readonly name: string = 'BastionError';
  readonly field: string | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Context for logs and tests; never parsed for meaning. */
    readonly details?: Record<string, unknown>,
    options?: BastionErrorOptions,
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.field = options?.field;
  }

  get httpStatus(): number {
    return httpStatusOf(this.code);
  }

  /** The metav1.Status a Kubernetes client sees for this error. */
  toStatus(): Status {
    return statusFor(this.code, this.message);
  }
}

/**
 * An upstream API server refused: its own metav1.Status (or one synthesised from its HTTP answer)
 * is what the agent receives, unchanged.
 */
export class UpstreamRefusal extends BastionError {
  override readonly name = 'UpstreamRefusal';
  constructor(
    readonly status: Status,
    readonly upstreamHttpStatus: number,
    details?: Record<string, unknown>,
    options?: BastionErrorOptions,
  ) {
    super(codeForHttpStatus(upstreamHttpStatus), status.message ?? `upstream answered HTTP ${upstreamHttpStatus}`, details, options);
  }

  override toStatus(): Status {
    return this.status;
  }
}

/** A refused input field: INVALID_FIELD naming it (the control API answers it with `field`). */
export function invalidField(field: string, message: string, details?: Record<string, unknown>): BastionError {
  return new BastionError('INVALID_FIELD', message, details, { field });
}

export function isBastionError(err: unknown, code?: ErrorCode): err is BastionError {
  return err instanceof BastionError && (code === undefined || err.code === code);
}

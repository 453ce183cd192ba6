// One error module with stable codes. Callers branch on `code`, never on message text.
import { apiStatus, type Status } from '../protocol/status.js';

export const ErrorCode = {
  // Upgrade / negotiation
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
  NO_COMMON_PROTOCOL: 'NO_COMMON_PROTOCOL',
  BAD_STREAM_REQUEST: 'BAD_STREAM_REQUEST',
  STREAM_SETUP_TIMEOUT: 'STREAM_SETUP_TIMEOUT',
  // SPDY/3.1
  SPDY_PROTOCOL_ERROR: 'SPDY_PROTOCOL_ERROR',
  SPDY_UNSUPPORTED_VERSION: 'SPDY_UNSUPPORTED_VERSION',
  SPDY_FRAME_TOO_LARGE: 'SPDY_FRAME_TOO_LARGE',
  SPDY_HEADER_BLOCK_TOO_LARGE: 'SPDY_HEADER_BLOCK_TOO_LARGE',
  SPDY_COMPRESSION_ERROR: 'SPDY_COMPRESSION_ERROR',
  SPDY_TOO_MANY_STREAMS: 'SPDY_TOO_MANY_STREAMS',
  SPDY_INVALID_STREAM: 'SPDY_INVALID_STREAM',
  SPDY_GOAWAY: 'SPDY_GOAWAY',
  // WebSocket channel protocol
  WS_BAD_MESSAGE: 'WS_BAD_MESSAGE',
  WS_UNKNOWN_CHANNEL: 'WS_UNKNOWN_CHANNEL',
  // Resize
  BAD_RESIZE: 'BAD_RESIZE',
  // Connection
  CONNECTION_CLOSED: 'CONNECTION_CLOSED',
  // Requests
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  BAD_REQUEST: 'BAD_REQUEST',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  INTERNAL: 'INTERNAL',
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  UNCLASSIFIABLE: 'UNCLASSIFIABLE',
  POLICY_DENIED: 'POLICY_DENIED',
  APPROVAL_REQUIRED: 'APPROVAL_REQUIRED',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  // Configuration / CLI
  CONFIG_INVALID: 'CONFIG_INVALID',
  USAGE: 'USAGE',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** HTTP status and metav1.Status reason for each code that can reach a client. */
const HTTP: Partial<Record<ErrorCode, { code: number; reason: string }>> = {
  UPGRADE_REQUIRED: { code: 400, reason: 'BadRequest' },
  NO_COMMON_PROTOCOL: { code: 403, reason: 'Forbidden' },
  BAD_STREAM_REQUEST: { code: 400, reason: 'BadRequest' },
  UNAUTHORIZED: { code: 401, reason: 'Unauthorized' },
  FORBIDDEN: { code: 403, reason: 'Forbidden' },
  NOT_FOUND: { code: 404, reason: 'NotFound' },
  ALREADY_EXISTS: { code: 409, reason: 'AlreadyExists' },
  BAD_REQUEST: { code: 400, reason: 'BadRequest' },
  METHOD_NOT_ALLOWED: { code: 405, reason: 'MethodNotAllowed' },
  CONFIG_INVALID: { code: 500, reason: 'InternalError' },
  UPSTREAM_UNAVAILABLE: { code: 502, reason: 'ServiceUnavailable' },
  UNCLASSIFIABLE: { code: 400, reason: 'BadRequest' },
  POLICY_DENIED: { code: 403, reason: 'Forbidden' },
  APPROVAL_REQUIRED: { code: 403, reason: 'Forbidden' },
  SHUTTING_DOWN: { code: 503, reason: 'ServiceUnavailable' },
};

export class BastionError extends Error {
  override readonly name = 'BastionError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get httpStatus(): number {
    return HTTP[this.code]?.code ?? 500;
  }

  /** The metav1.Status a Kubernetes client sees for this error. */
  toStatus(): Status {
    const http = HTTP[this.code] ?? { code: 500, reason: 'InternalError' };
    return apiStatus(http.code, http.reason, this.message);
  }
}

export function isBastionError(err: unknown, code?: ErrorCode): err is BastionError {
  return err instanceof BastionError && (code === undefined || err.code === code);
}

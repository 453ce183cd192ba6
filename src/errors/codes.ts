// Every error code the bastion uses, in one table: the HTTP status it is answered with (control API
// and Kubernetes endpoint alike) and the metav1.Status reason a Kubernetes client sees. Callers
// branch on the code, never on message text; adding a code means adding its row here.

/** metav1.StatusReason values the bastion sends (plus ClientClosed for the audit of gone clients). */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'MethodNotAllowed'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout'
  | 'ClientClosed';

interface CodeRow {
  readonly http: number;
  readonly reason: StatusReason;
}

export const ERROR_CODES = {
  // Upgrade / negotiation
  UPGRADE_REQUIRED: { http: 400, reason: 'BadRequest' },
  NO_COMMON_PROTOCOL: { http: 403, reason: 'Forbidden' },
  BAD_STREAM_REQUEST: { http: 400, reason: 'BadRequest' },
  STREAM_SETUP_TIMEOUT: { http: 504, reason: 'Timeout' },
  // SPDY/3.1 (connection-level: never answered over HTTP, the connection is torn down)
  SPDY_PROTOCOL_ERROR: { http: 400, reason: 'BadRequest' },
  SPDY_UNSUPPORTED_VERSION: { http: 400, reason: 'BadRequest' },
  SPDY_FRAME_TOO_LARGE: { http: 400, reason: 'BadRequest' },
  SPDY_HEADER_BLOCK_TOO_LARGE: { http: 400, reason: 'BadRequest' },
  SPDY_COMPRESSION_ERROR: { http: 400, reason: 'BadRequest' },
  SPDY_TOO_MANY_STREAMS: { http: 400, reason: 'BadRequest' },
  SPDY_INVALID_STREAM: { http: 400, reason: 'BadRequest' },
  SPDY_GOAWAY: { http: 503, reason: 'ServiceUnavailable' },
  // WebSocket channel protocol
  WS_BAD_MESSAGE: { http: 400, reason: 'BadRequest' },
  WS_UNKNOWN_CHANNEL: { http: 400, reason: 'BadRequest' },
  // Resize
  BAD_RESIZE: { http: 400, reason: 'BadRequest' },
  // Connection
  CONNECTION_CLOSED: { http: 499, reason: 'ClientClosed' },
  // Requests, on either endpoint
  UNAUTHENTICATED: { http: 401, reason: 'Unauthorized' },
  FORBIDDEN: { http: 403, reason: 'Forbidden' },
  NOT_FOUND: { http: 404, reason: 'NotFound' },
  ALREADY_EXISTS: { http: 409, reason: 'AlreadyExists' },
  BAD_REQUEST: { http: 400, reason: 'BadRequest' },
  METHOD_NOT_ALLOWED: { http: 405, reason: 'MethodNotAllowed' },
  TOO_MANY_REQUESTS: { http: 429, reason: 'TooManyRequests' },
  INTERNAL: { http: 500, reason: 'InternalError' },
  UPSTREAM_UNAVAILABLE: { http: 502, reason: 'ServiceUnavailable' },
  UNCLASSIFIABLE: { http: 400, reason: 'BadRequest' },
  POLICY_DENIED: { http: 403, reason: 'Forbidden' },
  APPROVAL_REQUIRED: { http: 403, reason: 'Forbidden' },
  SHUTTING_DOWN: { http: 503, reason: 'ServiceUnavailable' },
  // The audit log cannot commit: nothing is forwarded until it can (fail closed).
  AUDIT_UNAVAILABLE: { http: 503, reason: 'ServiceUnavailable' },
  // Control API bodies and queries
  UNSUPPORTED_MEDIA_TYPE: { http: 415, reason: 'UnsupportedMediaType' },
  BODY_TOO_LARGE: { http: 413, reason: 'RequestEntityTooLarge' },
  INVALID_JSON: { http: 400, reason: 'BadRequest' },
  INVALID_BODY: { http: 400, reason: 'BadRequest' },
  INVALID_FIELD: { http: 400, reason: 'BadRequest' },
  UNKNOWN_FIELD: { http: 400, reason: 'BadRequest' },
  INVALID_QUERY: { http: 400, reason: 'BadRequest' },
  INVALID_STATE: { http: 400, reason: 'BadRequest' },
  INVALID_RECORDING: { http: 409, reason: 'Conflict' },
  // Files the bastion writes and reads back
  RECORDING_FAILED: { http: 500, reason: 'InternalError' },
  INVALID_ARCHIVE: { http: 400, reason: 'BadRequest' },
  // Configuration / CLI (never answered to a client; 500 if one ever is)
  CONFIG_INVALID: { http: 500, reason: 'InternalError' },
  USAGE: { http: 400, reason: 'BadRequest' },
} as const satisfies Record<string, CodeRow>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** `ErrorCode.NOT_FOUND === 'NOT_FOUND'`: names to type instead of string literals. */
export const ErrorCode = Object.freeze(Object.fromEntries(Object.keys(ERROR_CODES).map((k) => [k, k]))) as { readonly [K in ErrorCode]: K };

export function httpStatusOf(code: ErrorCode): number {
  return ERROR_CODES[code].http;
}

export function statusReasonOf(code: ErrorCode): StatusReason {
  return ERROR_CODES[code].reason;
}

/** The code for an HTTP status an upstream answered with (used to type upstream refusals). */
export function codeForHttpStatus(http: number): ErrorCode {
  switch (http) {
    case 400:
      return 'BAD_REQUEST';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 409:
      return 'ALREADY_EXISTS';
    case 429:
      return 'TOO_MANY_REQUESTS';
    default:
      return 'UPSTREAM_UNAVAILABLE';
  }
}

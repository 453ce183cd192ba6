import type { ServerResponse } from 'node:http';
import { apiStatus, type StatusDetails } from '../../protocol/status.js';
import { writeStatusResponse } from '../../transport/http-response.js';

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': bytes.length });
  res.end(bytes);
}

/** A REST error, as kube-apiserver reports it. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  static notFound(resource: string, name: string): ApiError {
    return new ApiError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
  }

  static badRequest(message: string): ApiError {
    return new ApiError(400, 'BadRequest', message);
  }
}

export function sendApiError(res: ServerResponse, err: ApiError): void {
  writeStatusResponse(res, apiStatus(err.code, err.reason, err.message, err.details));
}

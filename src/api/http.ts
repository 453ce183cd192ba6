// JSON out for the control API, and the documented error shape: {"error": {"code", "message", "field"?}}
// with the HTTP status from the one error table (src/errors/codes.ts).
import type { ServerResponse } from 'node:http';
import { BastionError, ErrorCode, httpStatusOf } from '../errors/index.js';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
  res.writeHead(status, { 'Content-Type': JSON_CONTENT_TYPE, 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
  res.end(bytes);
}

/** The body of an error answer. */
export function problemBody(err: BastionError): { error: { code: string; message: string; field?: string } } {
  return { error: { code: err.code, message: err.message, ...(err.field !== undefined ? { field: err.field } : {}) } };
}

/** Answers a BastionError with its table status. A 500 is the bastion's fault: its text stays in the log. */
export function sendProblem(res: ServerResponse, err: BastionError): void {
  const status = httpStatusOf(err.code);
  const shown = status === 500 ? new BastionError(err.code, 'internal error') : err;
  sendJson(res, status, problemBody(shown));
}

/** `attachment; filename="..."` with only safe characters. */
export function attachment(filename: string): string {
  return `attachment; filename="${filename.replace(/[^A-Za-z0-9._-]/g, '_')}"`;
}

export const notFound = (what: string): BastionError => new BastionError(ErrorCode.NOT_FOUND, `${what} not found`);

// JSON in and out for the control API, with stable error codes and bounded bodies.
import type { IncomingMessage, ServerResponse } from 'node:http';

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const bytes = Buffer.from(`${JSON.stringify(body, null, 2)}\n`);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
  res.end(bytes);
}

export function sendProblem(res: ServerResponse, p: ApiProblem): void {
  sendJson(res, p.status, { error: { code: p.code, message: p.message, ...(p.field ? { field: p.field } : {}) } });
}

const MAX_BODY = 64 * 1024;

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '');
  if (!/^application\/json\b/i.test(type)) throw new ApiProblem(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ApiProblem(413, 'BODY_TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiProblem(400, 'INVALID_JSON', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ApiProblem(400, 'INVALID_BODY', 'request body must be a JSON object');
  return value as Record<string, unknown>;
}

export function requireString(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v.trim() === '') throw new ApiProblem(400, 'INVALID_FIELD', `"${field}" must be a non-empty string`, field);
  return v;
}

export function rejectUnknownFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new ApiProblem(400, 'UNKNOWN_FIELD', `unknown field "${key}" (allowed: ${allowed.join(', ')})`, key);
  }
}

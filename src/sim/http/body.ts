import type { IncomingMessage } from 'node:http';
import { ApiError } from './respond.js';

/** kube-apiserver's default request body limit is 3 MiB. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'RequestEntityTooLarge', 'request body too large');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw ApiError.badRequest('request body is not valid JSON');
  }
}

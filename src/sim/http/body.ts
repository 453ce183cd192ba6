import type { IncomingMessage } from 'node:http';
import { ApiError } from './respond.js';
import { decodeProtobufObject, isProtobufContentType } from './protobuf.js';

/** kube-apiserver's default request body limit is 3 MiB. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

async function readBodyBytes(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, 'RequestEntityTooLarge', 'request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function parseJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw ApiError.badRequest('request body is not valid JSON');
  }
}

export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  return parseJson(await readBodyBytes(req));
}

/**
 * An object body in the JSON shape, decoded by Content-Type: application/vnd.kubernetes.protobuf
 * (what kubectl 1.33 sends for typed creates) or JSON (the default).
 */
export async function readObjectBody(req: IncomingMessage): Promise<unknown> {
  const bytes = await readBodyBytes(req);
  if (isProtobufContentType(req.headers['content-type'])) return decodeProtobufObject(bytes);
  return parseJson(bytes);
}

// Request validation for the control API, in one middleware: the path parameters, the query and
// the JSON body are parsed with the route's zod schemas, and any refusal is a BastionError with
// the documented code and field (answered by the error handler in app.ts).
//
//   415 UNSUPPORTED_MEDIA_TYPE  a body that is not application/json
//   413 BODY_TOO_LARGE          a body over 64 KiB
//   400 INVALID_JSON            not JSON;  INVALID_BODY: not a JSON object
//   400 INVALID_FIELD / UNKNOWN_FIELD (body), INVALID_QUERY (query), naming the field
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { z } from 'zod';
import { BastionError, ErrorCode } from '../errors/index.js';
import { parseInput } from '../model/validation.js';

export const MAX_BODY_BYTES = 64 * 1024;

export interface InputSchemas {
  params?: z.ZodObject | undefined;
  query?: z.ZodObject | undefined;
  body?: z.ZodType | undefined;
  /** The body may be left out entirely: it is then `{}`. */
  bodyOptional?: boolean | undefined;
}

/** What validate() parsed, for the handler. */
export interface Inputs {
  params: unknown;
  query: unknown;
  body: unknown;
}

const INPUTS = 'kubeBastionInputs';

export function inputsOf(res: Response): Inputs {
  return res.locals[INPUTS] as Inputs;
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

const parseJson = express.json({ limit: MAX_BODY_BYTES, strict: false, type: () => true });

/** body-parser's failures, by its `type`, as the documented codes. */
function bodyError(err: unknown): BastionError {
  const type = (err as { type?: unknown }).type;
  switch (type) {
    case 'entity.too.large':
      return new BastionError(ErrorCode.BODY_TOO_LARGE, `request body over ${MAX_BODY_BYTES} bytes`, undefined, { cause: err });
    case 'entity.parse.failed':
      return new BastionError(ErrorCode.INVALID_JSON, 'request body is not valid JSON', undefined, { cause: err });
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new BastionError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send the body as application/json (UTF-8, optionally compressed)', undefined, { cause: err });
    default:
      return new BastionError(ErrorCode.BAD_REQUEST, 'the request body could not be read', undefined, { cause: err });
  }
}

function readJsonBody(optional: boolean): RequestHandler {
  return (req, res, next) => {
    if (!hasBody(req) && optional) {
      req.body = {};
      return next();
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return next(new BastionError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send the body as application/json'));
    }
    if (!hasBody(req)) return next(new BastionError(ErrorCode.INVALID_JSON, 'request body is empty: send a JSON object'));
    parseJson(req, res, (err?: unknown) => next(err === undefined ? undefined : bodyError(err)));
  };
}

/** The query as one value per name; a name given twice is refused. */
function queryOf(req: Request): Record<string, string> {
  const params = new URL(req.originalUrl, 'http://control.invalid').searchParams;
  const out: Record<string, string> = {};
  for (const [key, value] of params) {
    if (Object.prototype.hasOwnProperty.call(out, key)) {
      throw new BastionError(ErrorCode.INVALID_QUERY, `${key} is given more than once`, undefined, { field: key });
    }
    out[key] = value;
  }
  return out;
}

/** The middlewares that read and check a route's inputs, leaving them for inputsOf(res). */
export function validate(schemas: InputSchemas): RequestHandler[] {
  const check: RequestHandler = (req, res, next) => {
    let params: unknown = req.params;
    if (schemas.params) {
      const parsed = schemas.params.safeParse(req.params);
      // Path parameters are strings by construction: a refusal means no such resource path.
      if (!parsed.success) throw new BastionError(ErrorCode.NOT_FOUND, `no route ${req.path}`);
      params = parsed.data;
    }
    const query = schemas.query ? parseInput(schemas.query, queryOf(req), 'query') : undefined;
    const body = schemas.body ? parseInput(schemas.body, req.body, 'body') : undefined;
    res.locals[INPUTS] = { params, query, body } satisfies Inputs;
    next();
  };
  return schemas.body ? [readJsonBody(schemas.bodyOptional === true), check] : [check];
}

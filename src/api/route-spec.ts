// The shape of one control-API route in the route table (contract.ts): what it takes and answers,
// as zod schemas, who may call it, and documented examples. The express routes are mounted from
// these entries and the OpenAPI document is generated from them.
import type { z } from 'zod';
import type { UserRole } from '../model/vocabulary.js';

export type Method = 'GET' | 'POST';

/** The users of the example world the examples run in (see openapi-examples.test.ts). */
export type ExampleUser = 'alice' | 'bob' | 'rita' | 'adam';

export interface ExampleSpec {
  readonly summary: string;
  /** Who calls (a user of the example world); null: no token. Default: alice, adam for admin-only routes. */
  readonly as?: ExampleUser | null;
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, string>>;
  /** The JSON body sent; absent: none. */
  readonly body?: unknown;
  readonly status: number;
  /** The documented JSON answer. Ids, tokens and times vary per call: those are compared by kind only. */
  readonly response?: unknown;
}

export interface JsonResponse {
  readonly status: 200 | 201;
  readonly description: string;
  readonly schema: z.ZodType;
}

/** A streamed or text answer the handler writes itself. */
export interface FileResponse {
  readonly status: 200;
  readonly description: string;
  readonly contentType: string;
  readonly binary?: boolean;
}

export interface RouteSpec {
  readonly method: Method;
  /** OpenAPI form: `/v1/approvals/{id}`. */
  readonly path: string;
  readonly operationId: string;
  readonly tag: string;
  readonly summary: string;
  readonly description?: string;
  /** Roles allowed; null: no authentication. */
  readonly roles: readonly UserRole[] | null;
  readonly params?: z.ZodObject;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  /** The body may be left out entirely (it is then `{}`). */
  readonly bodyOptional?: boolean;
  readonly response: JsonResponse | FileResponse;
  /** Documented error answers beyond those the route's shape implies (401/403 with roles, 400/413/415 with a body, 400 with a query). */
  readonly errors?: Readonly<Partial<Record<400 | 404 | 409, string>>>;
  readonly examples?: Readonly<Record<string, ExampleSpec>>;
}

/** Declares a route, keeping its schemas' types for the handler. */
export function route<const S extends RouteSpec>(spec: S): S {
  return spec;
}

/** `/v1/approvals/{id}` as express writes it: `/v1/approvals/:id`. */
export function expressPath(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ':$1');
}

export function isJsonResponse(r: JsonResponse | FileResponse): r is JsonResponse {
  return 'schema' in r;
}

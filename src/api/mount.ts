// Mounting route-table entries on an express router: authentication for the entry's roles, the
// validate() middleware for its schemas, then a handler typed from those schemas. JSON answers are
// sent with the entry's status; file answers are written by the handler.
import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import type { User } from '../store/types.js';
import type { Authenticate } from './auth.js';
import { sendJson } from './http.js';
import { expressPath, isJsonResponse, type RouteSpec } from './route-spec.js';
import { inputsOf, validate } from './validate.js';

type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined;

export interface HandlerContext<S extends RouteSpec> {
  req: Request;
  res: Response;
  /** The authenticated user; undefined on routes without roles. */
  user: S['roles'] extends null ? undefined : User;
  params: Parsed<S['params']>;
  query: Parsed<S['query']>;
  body: Parsed<S['body']>;
}

/** A JSON route returns its answer (the response schema's input type); a file route writes it. */
export type Reply<S extends RouteSpec> = S['response'] extends { schema: infer R extends z.ZodType } ? z.input<R> : void;

export type Handler<S extends RouteSpec> = (ctx: HandlerContext<S>) => Promise<Reply<S>>;

export interface MountedRoute {
  method: string;
  /** express form: `/v1/approvals/:id`. */
  pattern: string;
}

export class ApiRouter {
  readonly router = Router({ caseSensitive: true });
  readonly specs: RouteSpec[] = [];

  constructor(private readonly authenticate: Authenticate) {}

  add<S extends RouteSpec>(spec: S, handler: Handler<S>): this {
    const roles = spec.roles;
    const authenticate = this.authenticate;
    const method = spec.method === 'GET' ? 'get' : 'post';
    this.router[method](
      expressPath(spec.path),
      async (req, res, next) => {
        res.locals['user'] = roles === null ? undefined : await authenticate(req, roles);
        next();
      },
      ...validate(spec),
      async (req, res) => {
        const { params, query, body } = inputsOf(res);
        const ctx = { req, res, user: res.locals['user'], params, query, body } as HandlerContext<S>;
        const answer = await handler(ctx);
        if (isJsonResponse(spec.response)) sendJson(res, spec.response.status, answer);
      },
    );
    this.specs.push(spec);
    return this;
  }

  list(): MountedRoute[] {
    return this.specs.map((s) => ({ method: s.method, pattern: expressPath(s.path) }));
  }
}

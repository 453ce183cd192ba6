// GET /v1/openapi.json, generated: every operation from the route table (contract.ts), every schema
// from the zod schemas the routes validate with (z.toJSONSchema, OpenAPI 3.0 dialect), every
// example from the table's examples. Nothing here restates a field.
import { z } from 'zod';
import { ROUTES } from './contract.js';
import { isJsonResponse, type RouteSpec } from './route-spec.js';
import { ErrorSchema } from './schemas.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
export type OpenApiDocument = JsonObject;

const REF = (id: string): string => `#/components/schemas/${id}`;

/** What z.toJSONSchema writes that an OpenAPI 3.0 reader does not need: `$id`, zod's ISO-time regex, the safe-integer bounds. */
function tidy(value: unknown): Json {
  if (Array.isArray(value)) return value.map(tidy);
  if (typeof value !== 'object' || value === null) return value as Json;
  const o = value as Record<string, unknown>;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === '$id' || k === '$schema') continue;
    if (k === 'pattern' && o['format'] === 'date-time') continue;
    if ((k === 'minimum' || k === 'maximum') && Math.abs(v as number) === Number.MAX_SAFE_INTEGER) continue;
    out[k] = tidy(v);
  }
  return out;
}

function componentId(schema: z.ZodType, what: string): string {
  const id = z.globalRegistry.get(schema)?.id;
  if (typeof id !== 'string') throw new Error(`openapi: ${what} has no component id (give the schema .meta({ id }))`);
  return id;
}

function inline(schema: z.ZodType): JsonObject {
  return tidy(z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' })) as JsonObject;
}

function parameters(spec: RouteSpec): JsonObject[] {
  const out: JsonObject[] = [];
  for (const [where, object] of [
    ['path', spec.params],
    ['query', spec.query],
  ] as const) {
    if (!object) continue;
    for (const [name, field] of Object.entries(object.shape as Record<string, z.ZodType>)) {
      const { description, ...schema } = inline(field);
      const examples: JsonObject = {};
      for (const [exampleName, ex] of Object.entries(spec.examples ?? {})) {
        const value = (where === 'path' ? ex.params : ex.query)?.[name];
        if (value !== undefined) examples[exampleName] = { value };
      }
      out.push({
        name,
        in: where,
        required: where === 'path' || !field.isOptional(),
        ...(description !== undefined ? { description } : {}),
        schema,
        ...(Object.keys(examples).length ? { examples } : {}),
      });
    }
  }
  return out;
}

const ERROR_TEXT = {
  body: 'The body is not JSON (INVALID_JSON), not an object (INVALID_BODY), or a field is invalid (INVALID_FIELD) or unknown (UNKNOWN_FIELD); `error.field` names it.',
  query: 'A bad or unknown query parameter (INVALID_QUERY); `error.field` names it.',
  401: 'No bearer token, or an unknown or disabled one (UNAUTHENTICATED).',
  403: "The user's role may not do this (FORBIDDEN).",
  413: 'The body is over 64 KiB (BODY_TOO_LARGE).',
  415: 'The body is not application/json (UNSUPPORTED_MEDIA_TYPE).',
} as const;

function responses(spec: RouteSpec): JsonObject {
  const statuses: Record<string, { description: string; schema: Json; contentType: string }> = {};
  const error = (status: number, description: string): void => {
    const key = String(status);
    const known = statuses[key];
    statuses[key] = { description: known ? `${known.description} ${description}` : description, schema: { $ref: REF(componentId(ErrorSchema, 'Error')) }, contentType: 'application/json' };
  };
  const r = spec.response;
  statuses[String(r.status)] = isJsonResponse(r)
    ? { description: r.description, schema: { $ref: REF(componentId(r.schema, `the ${spec.operationId} response`)) }, contentType: 'application/json' }
    : { description: r.description, schema: r.binary ? { type: 'string', format: 'binary' } : { type: 'string' }, contentType: r.contentType };
  if (spec.body) error(400, ERROR_TEXT.body);
  if (spec.query) error(400, ERROR_TEXT.query);
  for (const [status, description] of Object.entries(spec.errors ?? {})) error(Number(status), description);
  if (spec.roles) {
    error(401, ERROR_TEXT[401]);
    error(403, ERROR_TEXT[403]);
  }
  if (spec.body) {
    error(413, ERROR_TEXT[413]);
    error(415, ERROR_TEXT[415]);
  }
  const out: JsonObject = {};
  for (const [status, s] of Object.entries(statuses).sort(([a], [b]) => Number(a) - Number(b))) {
    const examples: JsonObject = {};
    for (const [name, ex] of Object.entries(spec.examples ?? {})) {
      if (String(ex.status) === status && ex.response !== undefined) examples[name] = { summary: ex.summary, value: ex.response as Json };
    }
    out[status] = { description: s.description, content: { [s.contentType]: { schema: s.schema, ...(Object.keys(examples).length ? { examples } : {}) } } };
  }
  for (const [name, ex] of Object.entries(spec.examples ?? {})) {
    if (out[String(ex.status)] === undefined) throw new Error(`openapi: example ${spec.operationId}.${name} answers ${ex.status}, which the route does not document`);
  }
  return out;
}

function operation(spec: RouteSpec): JsonObject {
  const roles = spec.roles ? `Roles: ${spec.roles.join(', ')}.` : 'No authentication.';
  const op: JsonObject = {
    operationId: spec.operationId,
    tags: [spec.tag],
    summary: spec.summary,
    description: [roles, spec.description].filter(Boolean).join(' '),
  };
  if (!spec.roles) op['security'] = [];
  const params = parameters(spec);
  if (params.length) op['parameters'] = params;
  if (spec.body) {
    const examples: JsonObject = {};
    for (const [name, ex] of Object.entries(spec.examples ?? {})) {
      if (ex.body !== undefined) examples[name] = { summary: ex.summary, value: ex.body as Json };
    }
    // Optional only when leaving it out is valid: {} passes the schema.
    const required = spec.bodyOptional !== true || !spec.body.safeParse({}).success;
    op['requestBody'] = {
      required,
      content: { 'application/json': { schema: { $ref: REF(componentId(spec.body, `the ${spec.operationId} body`)) }, ...(Object.keys(examples).length ? { examples } : {}) } },
    };
  }
  op['responses'] = responses(spec);
  return op;
}

let cached: OpenApiDocument | undefined;

/** The document (a fresh copy each call). */
export function openApiDocument(): OpenApiDocument {
  if (!cached) {
    const { schemas } = z.toJSONSchema(z.globalRegistry, { target: 'openapi-3.0', io: 'input', uri: REF, unrepresentable: 'any' });
    const paths: JsonObject = {};
    for (const spec of ROUTES) {
      const item = (paths[spec.path] ??= {}) as JsonObject;
      item[spec.method.toLowerCase()] = operation(spec);
    }
    cached = {
      openapi: '3.0.3',
      info: {
        title: 'kube-bastion control API',
        version: '1',
        description:
          'The control endpoint of kube-bastion: approvals, sessions and evidence, agents, users, audit and policy for approvers, reviewers and admins. ' +
          'Send `Authorization: Bearer <user token>` (kube-bastion user add NAME --role ROLE). Bodies are JSON with camelCase fields; ' +
          'list endpoints answer {"items": [...]}; errors answer {"error": {"code", "message", "field"?}}. Generated from the schemas the routes validate with.',
      },
      servers: [{ url: 'http://127.0.0.1:8080', description: 'The default --control-listen' }],
      security: [{ bearer: [] }],
      tags: [
        { name: 'approvals', description: 'Scoped, timed permissions decided outside the agent.' },
        { name: 'sessions', description: 'Recorded exec/attach/portforward sessions and their files.' },
        { name: 'evidence', description: 'Signed evidence archives for review.' },
        { name: 'agents' },
        { name: 'users' },
        { name: 'audit' },
        { name: 'policy' },
        { name: 'operations' },
      ],
      paths,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A user token (role approver, reviewer or admin).' } },
        schemas: tidy(schemas),
      },
    };
  }
  return structuredClone(cached);
}

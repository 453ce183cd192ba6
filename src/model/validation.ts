// Turning a zod refusal into the bastion's error: one BastionError naming the field at fault.
// Schemas give their messages as fragments read after the field's name ("must be a string"), so
// the same schema speaks of `commands[0]` in a flat API body and of `scope.commands[0]` in the
// approval service: the name comes from the issue's path, never from rewriting a message.
import { z } from 'zod';
import { BastionError, ErrorCode } from '../errors/index.js';

/** What was parsed: a request body, a query string, or an argument of a service call. */
export type InputKind = 'body' | 'query' | 'input';

/** A value as messages quote it (strings JSON-quoted, long values cut). */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (v === undefined) return 'missing';
  try {
    const text = JSON.stringify(v);
    return text === undefined ? typeof v : text.length > 80 ? `${text.slice(0, 80)}…` : text;
  } catch {
    return typeof v;
  }
}

/** `commands[0][1]`, `scope.pod`: an issue path as a field name, under `prefix` when given. */
export function fieldName(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
};

/** The keys an object schema declares (for "fields: ..." in unknown-field messages). */
function declaredKeys(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

/** Fragments for zod's own issues; a schema's own `error` wins over these. */
export const fragment: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'is required';
      return `must be ${TYPE_WORDS[iss.expected] ?? iss.expected}, not ${show(iss.input)}`;
    case 'too_small':
      if (iss.origin === 'array') return Number(iss.minimum) <= 1 ? 'must not be empty' : `must have at least ${iss.minimum} entries`;
      if (iss.origin === 'string') return Number(iss.minimum) <= 1 ? 'must not be empty' : `must be at least ${iss.minimum} characters`;
      return `${show(iss.input)} must be at least ${iss.minimum}`;
    case 'too_big':
      if (iss.origin === 'array') return `has more than ${iss.maximum} entries`;
      if (iss.origin === 'string') return `is longer than ${iss.maximum} characters`;
      return `${show(iss.input)} must be at most ${iss.maximum}`;
    case 'invalid_value':
      return `${show(iss.input)} is not one of ${iss.values.map(String).join(', ')}`;
    case 'unrecognized_keys': {
      const keys = declaredKeys(iss.inst);
      return `is not a field here${keys.length ? ` (fields: ${keys.join(', ')})` : ''}`;
    }
    case 'invalid_union': {
      const options = (iss as { options?: unknown[] }).options;
      return options ? `${show(iss.input)} must be one of ${options.map((o) => JSON.stringify(o)).join(', ')}` : `${show(iss.input)} is invalid`;
    }
    default:
      return `${show(iss.input)} is invalid`;
  }
};

/** Query strings speak of parameters. */
const queryFragment: z.core.$ZodErrorMap = (iss) =>
  iss.code === 'unrecognized_keys' ? `is not a query parameter here (allowed: ${declaredKeys(iss.inst).join(', ') || 'none'})` : fragment(iss);

/**
 * The error for a refused input: the first unknown field if there is one (as the documented
 * `UNKNOWN_FIELD`), else the first issue. Bodies answer UNKNOWN_FIELD / INVALID_FIELD (INVALID_BODY
 * when the body itself is not an object), queries INVALID_QUERY, service arguments INVALID_FIELD.
 */
export function inputError(issues: readonly z.core.$ZodIssue[], where: InputKind, prefix = ''): BastionError {
  const unknown = issues.find((i): i is z.core.$ZodIssueUnrecognizedKeys => i.code === 'unrecognized_keys');
  const issue = unknown ?? issues[0];
  if (issue === undefined) return new BastionError(ErrorCode.INTERNAL, 'validation failed without an issue');
  const field = fieldName(unknown ? [...issue.path, unknown.keys[0]!] : issue.path, prefix);
  if (field === '') {
    return where === 'query'
      ? new BastionError(ErrorCode.INVALID_QUERY, `query ${issue.message}`)
      : new BastionError(ErrorCode.INVALID_BODY, 'request body must be a JSON object');
  }
  const code = where === 'query' ? ErrorCode.INVALID_QUERY : unknown ? ErrorCode.UNKNOWN_FIELD : ErrorCode.INVALID_FIELD;
  return new BastionError(code, `${field} ${issue.message}`, undefined, { field });
}

/** Parses or throws the BastionError naming the field (under `prefix`, e.g. `scope`). */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, where: InputKind, prefix = ''): z.output<S> {
  const result = schema.safeParse(value, { error: where === 'query' ? queryFragment : fragment });
  if (!result.success) throw inputError(result.error.issues, where, prefix);
  return result.data;
}

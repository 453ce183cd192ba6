// Duplicate object keys in JSON text. JSON.parse keeps the last of two equal keys, but the API
// server's Go decoder merges them (both "spec" objects' fields survive), so a body with a duplicate
// key is not what an approver would be shown: such a body is refused, never held. Keys are compared
// as the decoder compares them: after unescaping ("spec" and "sp\u0065c" are one key), with a lone
// surrogate read as U+FFFD, as Go reads it.

/** Where a value sits: `spec`, `spec.containers[0].name`, `metadata.labels["app.kubernetes.io/name"]`. */
export type JsonPath = readonly (string | number)[];

export function formatJsonPath(path: JsonPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === '' ? '(the top level)' : out;
}

/** A frame's place: its parent's frame and its own key or index there (a path built only when needed). */
interface Place {
  parent: Frame | null;
  at: string | number | null;
}
interface ObjectFrame extends Place {
  kind: 'object';
  keys: Set<string>;
  /** The key whose value is being read next. */
  key: string | null;
}
interface ArrayFrame extends Place {
  kind: 'array';
  index: number;
}
type Frame = ObjectFrame | ArrayFrame;

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

/** Lone surrogates become U+FFFD, as Go's decoder makes them; a pair stays one code point. */
function goKey(s: string): string {
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/**
 * The path of the first duplicate object key in `text` (at any depth), or null when there is
 * none. `text` must be JSON (call it on text JSON.parse accepted): anything else throws.
 * Iterative, so nesting depth costs heap, not stack.
 */
export function findDuplicateKey(text: string): JsonPath | null {
  const stack: Frame[] = [];
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`not JSON at offset ${i}: ${what}`);
  };
  const skipSpace = (): void => {
    while (i < text.length && WHITESPACE.has(text[i]!)) i++;
  };
  /** Reads a string starting at `i` (a quote); returns its decoded value. */
  const readString = (): string => {
    const start = i;
    i++;
    let escaped = false;
    while (i < text.length) {
      const ch = text[i]!;
      if (ch === '"' && !escaped) break;
      escaped = ch === '\\' && !escaped;
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
    // JSON.parse of the exact string literal decodes every escape (\uXXXX, surrogate pairs) as JSON defines.
    return JSON.parse(text.slice(start, i)) as string;
  };
  const readScalar = (): void => {
    const start = i;
    while (i < text.length && !WHITESPACE.has(text[i]!) && text[i] !== ',' && text[i] !== ']' && text[i] !== '}') i++;
    if (i === start) fail('a value was expected');
  };
  /** Where the value about to be read sits. */
  const here = (): Place => {
    const top = stack[stack.length - 1];
    if (!top) return { parent: null, at: null };
    return { parent: top, at: top.kind === 'object' ? top.key! : top.index };
  };
  const pathOf = (frame: Frame, key: string): JsonPath => {
    const path: (string | number)[] = [key];
    for (let f: Place = frame; f.parent !== null; f = f.parent) path.push(f.at!);
    return path.reverse();
  };
  /** Reads one value's start: scalars whole, containers pushed. */
  const readValue = (): void => {
    skipSpace();
    const ch = text[i];
    if (ch === '{') {
      i++;
      stack.push({ kind: 'object', ...here(), keys: new Set(), key: null });
    } else if (ch === '[') {
      i++;
      stack.push({ kind: 'array', ...here(), index: 0 });
    } else if (ch === '"') readString();
    else readScalar();
  };

  readValue();
  // After a container opens, or a member ends: what comes next in the innermost container.
  let opened = stack.length > 0;
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    skipSpace();
    const close = top.kind === 'object' ? '}' : ']';
    if (text[i] === close) {
      i++;
      stack.pop();
      const parent = stack[stack.length - 1];
      if (parent?.kind === 'array') parent.index++;
      opened = false;
      continue;
    }
    if (!opened) {
      if (text[i] !== ',') fail(`',' or '${close}' expected`);
      i++;
      skipSpace();
    }
    opened = false;
    if (top.kind === 'object') {
      if (text[i] !== '"') fail('a key was expected');
      const key = goKey(readString());
      if (top.keys.has(key)) return pathOf(top, key);
      top.keys.add(key);
      skipSpace();
      if (text[i] !== ':') fail("':' expected");
      i++;
      top.key = key;
    }
    const depth = stack.length;
    readValue();
    // A container was opened: read its members first. A scalar ended: this member is done.
    if (stack.length > depth) opened = true;
    else if (top.kind === 'array') top.index++;
  }
  skipSpace();
  if (i !== text.length) fail('text after the value');
  return null;
}

// The small pattern languages of a policy's match fields: how each entry is parsed (for the validator)
// and how it matches a request (for the evaluator). One place, so both always agree.

const LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?';
const NAME_RE = new RegExp(`^${LABEL}$`);
const GROUP_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/**
 * A `resources` entry. `sub` is what it says about the subresource:
 * `none` = the resource itself only, `any` = any subresource but not the resource itself,
 * `all` = the resource and every subresource, or one exact subresource name.
 */
export interface ResourcePattern {
  /** Plural resource name, or `*`. */
  readonly resource: string;
  /** API group, or undefined for any group. */
  readonly group: string | undefined;
  readonly sub: { readonly kind: 'none' | 'any' | 'all' } | { readonly kind: 'exact'; readonly name: string };
}

/** Parse a `resources` entry; a string result is the reason it is invalid. */
export function parseResourcePattern(text: string): ResourcePattern | string {
  const expect = 'expected RES, RES/SUB, RES/*, */SUB or *, optionally group-qualified as RES.GROUP (lower-case plural names)';
  if (text === '') return `empty resource (${expect})`;
  if (text !== text.toLowerCase()) return `resource names are lower-case plurals, e.g. "pods", not "${text}"`;
  const slash = text.split('/');
  if (slash.length > 2) return `too many "/" in "${text}" (${expect})`;
  const [head = '', subText] = slash;
  const dot = head.indexOf('.');
  const resource = dot < 0 ? head : head.slice(0, dot);
  const group = dot < 0 ? undefined : head.slice(dot + 1);
  if (resource !== '*' && !NAME_RE.test(resource)) return `invalid resource name "${resource}" in "${text}" (${expect})`;
  if (group !== undefined && !GROUP_RE.test(group)) {
    return `invalid API group "${group}" in "${text}" (for the core group use apiGroups: [""])`;
  }
  if (subText === undefined) {
    return { resource, group, sub: { kind: resource === '*' ? 'all' : 'none' } };
  }
  if (subText === '*') return { resource, group, sub: { kind: 'any' } };
  if (!NAME_RE.test(subText)) return `invalid subresource "${subText}" in "${text}" (${expect})`;
  return { resource, group, sub: { kind: 'exact', name: subText } };
}

export function resourcePatternMatches(p: ResourcePattern, apiGroup: string, resource: string, subresource: string): boolean {
  if (p.group !== undefined && p.group !== apiGroup) return false;
  if (p.resource !== '*' && p.resource !== resource) return false;
  switch (p.sub.kind) {
    case 'all':
      return true;
    case 'none':
      return subresource === '';
    case 'any':
      return subresource !== '';
    case 'exact':
      return subresource === p.sub.name;
  }
}

/** `apiGroups` entries: `''` (core), `*`, or a DNS subdomain. */
export function checkApiGroup(text: string): string | undefined {
  if (text === '' || text === '*' || GROUP_RE.test(text)) return undefined;
  return `invalid API group "${text}" (expected "" for the core group, "*", or a group such as "apps")`;
}

/**
 * Name-like entries (`namespaces`, `names`, `agents`): exact, `*` (any non-empty value),
 * `prefix*`, or `''` (the request has none). `*` may appear only at the end.
 */
export function checkNameGlob(text: string, what: string, opts: { allowEmpty: boolean; dnsLabel: boolean }): string | undefined {
  if (text === '') {
    return opts.allowEmpty ? undefined : `empty ${what} (use "*" for any)`;
  }
  if (text === '*') return undefined;
  const star = text.indexOf('*');
  if (star >= 0 && star !== text.length - 1) return `"*" may only end a ${what} pattern ("prefix*"), got "${text}"`;
  const literal = star >= 0 ? text.slice(0, -1) : text;
  if (literal.includes('/')) return `invalid ${what} "${text}" (contains "/")`;
  if (opts.dnsLabel) {
    // A prefix may end in "-" (team-*), so check it as the start of a label.
    const ok = star >= 0 ? /^[a-z0-9][-a-z0-9]*$/.test(literal) : NAME_RE.test(literal);
    if (!ok || literal.length > 63) return `invalid ${what} "${text}" (lower-case letters, digits and "-", at most 63 characters)`;
  }
  return undefined;
}

export function nameGlobMatches(pattern: string, value: string): boolean {
  if (pattern === '*') return value !== '';
  if (pattern.endsWith('*')) return value.startsWith(pattern.slice(0, -1));
  return pattern === value;
}

/** `nonResourcePaths` entries: `*`, an absolute path, or an absolute path prefix ending in `*`. */
export function checkPathPattern(text: string): string | undefined {
  if (text === '*') return undefined;
  if (!text.startsWith('/')) return `non-resource path "${text}" must start with "/" (or be "*")`;
  const star = text.indexOf('*');
  if (star >= 0 && star !== text.length - 1) return `"*" may only end a path pattern, got "${text}"`;
  if (/[?#\s]/.test(text)) return `non-resource path "${text}" may not contain "?", "#" or whitespace`;
  if (text.includes('//') || /(^|\/)\.\.?(\/|$|\*)/.test(text)) return `non-resource path "${text}" is not canonical`;
  return undefined;
}

export function pathPatternMatches(pattern: string, path: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return path.startsWith(pattern.slice(0, -1));
  return pattern === path;
}

/** The element that, last in an argv pattern, matches zero or more remaining arguments. */
export const REST_OF_ARGV = '**';

/**
 * A `commands` entry: an argv pattern. Each element is an exact argument or a glob in which `*`
 * matches any run of characters (none included) within that one argument; a final `"**"` matches
 * the remaining arguments, none included. A string result is the reason it is invalid.
 */
export function checkArgvPattern(pattern: readonly string[]): string | undefined {
  if (pattern.length === 0) return 'an empty argv pattern matches nothing (every exec has a command); remove it';
  if (pattern.length === 1 && pattern[0] === REST_OF_ARGV) return '["**"] matches every command; match every exec with streams: [exec] instead';
  for (const [i, element] of pattern.entries()) {
    if (element === REST_OF_ARGV) {
      if (i !== pattern.length - 1) return `"**" may only be the last element (it matches the remaining arguments), found at position ${i}`;
    } else if (element.includes(REST_OF_ARGV)) {
      return `"**" must be a whole element, got "${element}" (within one argument "*" already matches any run of characters)`;
    }
  }
  return undefined;
}

/** Compiles an argv pattern (already checked) into a matcher, once per policy version. */
export function compileArgvPattern(pattern: readonly string[]): (argv: readonly string[]) => boolean {
  const prefix = pattern[pattern.length - 1] === REST_OF_ARGV;
  const fixed = (prefix ? pattern.slice(0, -1) : pattern).map((element): ((arg: string) => boolean) => {
    if (!element.includes('*')) return (arg) => arg === element;
    // `*` is the only special character; everything else is literal. `s`: `*` spans newlines too.
    const re = new RegExp(`^${element.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's');
    return (arg) => re.test(arg);
  });
  return (argv) => (prefix ? argv.length >= fixed.length : argv.length === fixed.length) && fixed.every((matches, i) => matches(argv[i]!));
}

// Policy text -> PolicyDocument, or every problem found, each located at file:line:col with the path
// of the offending key. Works on the YAML syntax tree (not on plain JS values) so that every value
// still knows where it came from.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { PolicyAction } from '../model/request.js';
import { CAST_FORMATS, POLICY_ACTIONS, RESOURCE_VERBS, STREAM_OPERATIONS, type CastFormat } from '../model/vocabulary.js';
import { closest, type PolicyIssue } from './issues.js';
import { checkApiGroup, checkArgvPattern, checkNameGlob, checkPathPattern, parseResourcePattern } from './patterns.js';
import {
  ALL_VERBS,
  DEFAULT_RECORDING,
  MAX_AUTO_APPROVE_TTL_SECONDS,
  NON_RESOURCE_VERBS,
  POLICY_API_VERSION,
  POLICY_KIND,
  type AutoApprove,
  type PolicyDocument,
  type PolicyMatch,
  type PolicyRule,
  type RecordingSettings,
} from './schema.js';

const isCastFormat = (v: string): v is CastFormat => (CAST_FORMATS as readonly string[]).includes(v);

export type ValidationResult = { ok: true; document: PolicyDocument } | { ok: false; issues: PolicyIssue[] };

const TOP_KEYS = ['apiVersion', 'kind', 'description', 'recording', 'default', 'rules'] as const;
const RECORDING_KEYS = ['format', 'stdin'] as const;
const RULE_KEYS = ['name', 'description', 'match', 'action', 'reason', 'autoApprove'] as const;
const MATCH_KEYS = ['verbs', 'apiGroups', 'resources', 'namespaces', 'names', 'agents', 'nonResourcePaths', 'streams', 'commands', 'impersonation'] as const;
const RESOURCE_ONLY_KEYS = ['apiGroups', 'resources', 'namespaces', 'names', 'streams', 'commands'] as const;
const AUTO_APPROVE_KEYS = ['ttlSeconds', 'maxSessions'] as const;
const RULE_NAME_RE = /^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$/;
const MAX_RULE_NAME = 100;

/** Parse and validate policy text. `file` only labels the issues. */
export function validatePolicyText(text: string, file: string): ValidationResult {
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, version: '1.2' });
  const c = new Checker(file, lineCounter);
  for (const e of [...doc.errors, ...doc.warnings]) c.report(e.pos[0], '', `YAML: ${e.message}`);
  if (c.issues.length > 0) return { ok: false, issues: c.sorted() };
  const document = readDocument(c, doc.contents);
  if (c.issues.length > 0 || document === undefined) return { ok: false, issues: c.sorted() };
  return { ok: true, document };
}

// ---------------------------------------------------------------------------------------------
// Reporting and syntax-tree helpers

class Checker {
  readonly issues: PolicyIssue[] = [];
  private readonly offsets = new WeakMap<PolicyIssue, number>();
  constructor(
    readonly file: string,
    private readonly lineCounter: LineCounter,
  ) {}

  report(offset: number, path: string, message: string): void {
    const { line, col } = this.lineCounter.linePos(offset);
    const issue: PolicyIssue = { file: this.file, line, col, path, message };
    this.offsets.set(issue, offset);
    this.issues.push(issue);
  }

  lineOf(offset: number): number {
    return this.lineCounter.linePos(offset).line;
  }

  sorted(): PolicyIssue[] {
    return [...this.issues].sort((a, b) => (this.offsets.get(a) ?? 0) - (this.offsets.get(b) ?? 0));
  }
}

interface Field {
  readonly key: string;
  readonly path: string;
  readonly keyOffset: number;
  readonly value: unknown;
  readonly valueOffset: number;
}

interface Item<T> {
  readonly value: T;
  readonly offset: number;
  readonly path: string;
}

function offsetOf(node: unknown, fallback: number): number {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: unknown }).range;
    if (Array.isArray(range) && typeof range[0] === 'number') return range[0];
  }
  return fallback;
}

function endOf(node: unknown, fallback: number): number {
  if (node !== null && typeof node === 'object' && 'range' in node) {
    const range = (node as { range?: unknown }).range;
    if (Array.isArray(range) && typeof range[1] === 'number') return range[1];
  }
  return fallback;
}

function describe(node: unknown): string {
  if (node === null || node === undefined) return 'nothing';
  if (isAlias(node)) return 'an alias';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null || v === undefined) return 'nothing (null)';
    if (typeof v === 'string') return `the string "${v}"`;
    if (typeof v === 'number' || typeof v === 'boolean') return `the ${typeof v} ${String(v)}`;
    return `a value of type ${typeof v}`;
  }
  return 'an unsupported YAML node';
}

function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function rejectAlias(c: Checker, node: unknown, fallback: number, path: string): boolean {
  if (!isAlias(node)) return false;
  c.report(offsetOf(node, fallback), path, 'YAML anchors and aliases are not supported in a policy; write the value out');
  return true;
}

/** A mapping's known keys; unknown and non-string keys are reported. */
function readMap(c: Checker, node: unknown, fallback: number, path: string, what: string, allowed: readonly string[]): Map<string, Field> | undefined {
  if (rejectAlias(c, node, fallback, path)) return undefined;
  if (!isMap(node)) {
    c.report(offsetOf(node, fallback), path, `expected ${what}, got ${describe(node)}`);
    return undefined;
  }
  const mapOffset = offsetOf(node, fallback);
  const fields = new Map<string, Field>();
  for (const pair of node.items) {
    const keyOffset = offsetOf(pair.key, mapOffset);
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string') {
      c.report(keyOffset, path, `keys must be plain strings, got ${describe(pair.key)}`);
      continue;
    }
    const key = pair.key.value;
    const keyPath = child(path, key);
    if (!allowed.includes(key)) {
      const hint = closest(key, allowed);
      c.report(keyOffset, keyPath, `unknown key "${key}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; expected one of ${allowed.join(', ')}`);
      continue;
    }
    fields.set(key, { key, path: keyPath, keyOffset, value: pair.value, valueOffset: offsetOf(pair.value, endOf(pair.key, keyOffset)) });
  }
  return fields;
}

function required(c: Checker, fields: Map<string, Field>, key: string, mapOffset: number, path: string): Field | undefined {
  const field = fields.get(key);
  if (field === undefined) c.report(mapOffset, path, `missing required key "${key}"`);
  return field;
}

function readString(c: Checker, field: Field, opts: { nonEmpty: boolean }): string | undefined {
  if (rejectAlias(c, field.value, field.valueOffset, field.path)) return undefined;
  if (!isScalar(field.value) || typeof field.value.value !== 'string') {
    c.report(field.valueOffset, field.path, `expected a string, got ${describe(field.value)}`);
    return undefined;
  }
  const s = field.value.value;
  if (opts.nonEmpty && s.trim() === '') {
    c.report(field.valueOffset, field.path, 'must not be empty');
    return undefined;
  }
  return s;
}

function readBoolean(c: Checker, field: Field): boolean | undefined {
  if (rejectAlias(c, field.value, field.valueOffset, field.path)) return undefined;
  if (!isScalar(field.value) || typeof field.value.value !== 'boolean') {
    c.report(field.valueOffset, field.path, `expected a boolean (true or false), got ${describe(field.value)}`);
    return undefined;
  }
  return field.value.value;
}

function readInteger(c: Checker, field: Field, min: number, max: number): number | undefined {
  if (rejectAlias(c, field.value, field.valueOffset, field.path)) return undefined;
  const v = isScalar(field.value) ? field.value.value : undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    c.report(field.valueOffset, field.path, `expected an integer, got ${describe(field.value)}`);
    return undefined;
  }
  if (v < min || v > max) {
    c.report(field.valueOffset, field.path, `must be between ${min} and ${max}, got ${v}`);
    return undefined;
  }
  return v;
}

/** A non-empty list of strings, each checked by `check` (which returns a problem or undefined). */
function readStringList(c: Checker, field: Field, check: (s: string) => string | undefined): Item<string>[] | undefined {
  if (rejectAlias(c, field.value, field.valueOffset, field.path)) return undefined;
  if (!isSeq(field.value)) {
    const hint = isScalar(field.value) && typeof field.value.value === 'string' ? ` (write [${field.value.value}])` : '';
    c.report(field.valueOffset, field.path, `expected a list of strings, got ${describe(field.value)}${hint}`);
    return undefined;
  }
  if (field.value.items.length === 0) {
    c.report(field.valueOffset, field.path, `an empty list matches nothing; remove "${field.key}" to match any`);
    return undefined;
  }
  const items: Item<string>[] = [];
  const seen = new Set<string>();
  let ok = true;
  field.value.items.forEach((node, i) => {
    const path = `${field.path}[${i}]`;
    const offset = offsetOf(node, field.valueOffset);
    if (rejectAlias(c, node, offset, path)) {
      ok = false;
      return;
    }
    if (!isScalar(node) || typeof node.value !== 'string') {
      c.report(offset, path, `expected a string, got ${describe(node)}`);
      ok = false;
      return;
    }
    const problem = check(node.value);
    if (problem !== undefined) {
      c.report(offset, path, problem);
      ok = false;
      return;
    }
    if (seen.has(node.value)) {
      c.report(offset, path, `duplicate entry "${node.value}"`);
      ok = false;
      return;
    }
    seen.add(node.value);
    items.push({ value: node.value, offset, path });
  });
  return ok ? items : undefined;
}

/** `commands`: a non-empty list of argv patterns, each a non-empty list of strings (see patterns.ts). */
function readArgvPatterns(c: Checker, field: Field): Item<string[]>[] | undefined {
  if (rejectAlias(c, field.value, field.valueOffset, field.path)) return undefined;
  const example = 'e.g. [["test", "-d", "*"], ["ls", "**"]]';
  if (!isSeq(field.value)) {
    c.report(field.valueOffset, field.path, `expected a list of argv patterns (${example}), got ${describe(field.value)}`);
    return undefined;
  }
  if (field.value.items.length === 0) {
    c.report(field.valueOffset, field.path, 'an empty list matches nothing; remove "commands" to match any command');
    return undefined;
  }
  const items: Item<string[]>[] = [];
  const seen = new Set<string>();
  let ok = true;
  field.value.items.forEach((node, i) => {
    const path = `${field.path}[${i}]`;
    const offset = offsetOf(node, field.valueOffset);
    const pattern = readArgvPattern(c, node, offset, path);
    if (pattern === undefined) {
      ok = false;
      return;
    }
    const problem = checkArgvPattern(pattern);
    const key = JSON.stringify(pattern);
    if (problem !== undefined) c.report(offset, path, problem);
    else if (seen.has(key)) c.report(offset, path, `duplicate argv pattern ${key}`);
    if (problem !== undefined || seen.has(key)) {
      ok = false;
      return;
    }
    seen.add(key);
    items.push({ value: pattern, offset, path });
  });
  return ok ? items : undefined;
}

/** One argv pattern: a list of strings. Numbers and booleans are refused: argv elements are strings. */
function readArgvPattern(c: Checker, node: unknown, offset: number, path: string): string[] | undefined {
  if (rejectAlias(c, node, offset, path)) return undefined;
  if (!isSeq(node)) {
    const words = isScalar(node) && typeof node.value === 'string' ? node.value.split(/\s+/).filter((w) => w !== '') : [];
    const hint = words.length > 0 ? ` (write ${JSON.stringify(words).replaceAll('","', '", "')})` : '';
    c.report(offset, path, `expected an argv pattern (a list of strings, one per argument), got ${describe(node)}${hint}`);
    return undefined;
  }
  const argv: string[] = [];
  let ok = true;
  node.items.forEach((element, j) => {
    const at = offsetOf(element, offset);
    if (rejectAlias(c, element, at, `${path}[${j}]`)) {
      ok = false;
    } else if (!isScalar(element) || typeof element.value !== 'string') {
      const quote = isScalar(element) && (typeof element.value === 'number' || typeof element.value === 'boolean') ? ` (quote it: "${String(element.source ?? element.value)}")` : '';
      c.report(at, `${path}[${j}]`, `expected a string, got ${describe(element)}${quote}`);
      ok = false;
    } else {
      argv.push(element.value);
    }
  });
  return ok ? argv : undefined;
}

function oneOf(word: string, what: string, allowed: readonly string[], synonyms: Record<string, string> = {}): string {
  const hint = synonyms[word.toLowerCase()] ?? closest(word, allowed);
  return `unknown ${what} "${word}" (expected one of ${allowed.join(', ')}${hint === undefined ? '' : `; did you mean "${hint}"?`})`;
}

// ---------------------------------------------------------------------------------------------
// The document

const ACTION_SYNONYMS: Record<string, string> = {
  approve: 'approval',
  approved: 'approval',
  'needs-approval': 'approval',
  'need-approval': 'approval',
  'require-approval': 'approval',
  ask: 'approval',
  hold: 'approval',
  permit: 'allow',
  accept: 'allow',
  pass: 'allow',
  reject: 'deny',
  refuse: 'deny',
  forbid: 'deny',
  block: 'deny',
};

function readAction(c: Checker, field: Field): PolicyAction | undefined {
  const s = readString(c, field, { nonEmpty: false });
  if (s === undefined) return undefined;
  if ((POLICY_ACTIONS as readonly string[]).includes(s)) return s as PolicyAction;
  c.report(field.valueOffset, field.path, oneOf(s, 'action', POLICY_ACTIONS, ACTION_SYNONYMS));
  return undefined;
}

function readDocument(c: Checker, root: unknown): PolicyDocument | undefined {
  if (root === null || root === undefined || (isScalar(root) && root.value === null)) {
    c.report(0, '', `the policy is empty; expected a mapping with apiVersion: ${POLICY_API_VERSION}, kind: ${POLICY_KIND}, default and rules`);
    return undefined;
  }
  const fields = readMap(c, root, 0, '', 'a mapping at the top level', TOP_KEYS);
  if (fields === undefined) return undefined;
  const at = offsetOf(root, 0);

  const apiVersionField = required(c, fields, 'apiVersion', at, '');
  if (apiVersionField !== undefined) {
    const v = readString(c, apiVersionField, { nonEmpty: false });
    if (v !== undefined && v !== POLICY_API_VERSION) c.report(apiVersionField.valueOffset, 'apiVersion', `unsupported apiVersion "${v}" (expected ${POLICY_API_VERSION})`);
  }
  const kindField = required(c, fields, 'kind', at, '');
  if (kindField !== undefined) {
    const v = readString(c, kindField, { nonEmpty: false });
    if (v !== undefined && v !== POLICY_KIND) c.report(kindField.valueOffset, 'kind', `unsupported kind "${v}" (expected ${POLICY_KIND})`);
  }
  const descriptionField = fields.get('description');
  const description = descriptionField === undefined ? undefined : readString(c, descriptionField, { nonEmpty: false });
  const defaultField = fields.get('default');
  const defaultAction = defaultField === undefined ? 'deny' : readAction(c, defaultField);
  const recordingField = fields.get('recording');
  const recording = recordingField === undefined ? undefined : readRecording(c, recordingField);

  const rulesField = required(c, fields, 'rules', at, '');
  const rules = rulesField === undefined ? undefined : readRules(c, rulesField);

  if (defaultAction === undefined || rules === undefined || (recordingField !== undefined && recording === undefined)) return undefined;
  return {
    apiVersion: POLICY_API_VERSION,
    kind: POLICY_KIND,
    ...(description === undefined ? {} : { description }),
    ...(recording === undefined ? {} : { recording }),
    default: defaultAction,
    rules,
  };
}

function readRules(c: Checker, field: Field): PolicyRule[] | undefined {
  if (rejectAlias(c, field.value, field.valueOffset, field.path)) return undefined;
  if (!isSeq(field.value)) {
    c.report(field.valueOffset, field.path, `expected a list of rules, got ${describe(field.value)}`);
    return undefined;
  }
  const rules: PolicyRule[] = [];
  const names = new Map<string, number>();
  let ok = true;
  field.value.items.forEach((node, i) => {
    const rule = readRule(c, node, offsetOf(node, field.valueOffset), `rules[${i}]`, names);
    if (rule === undefined) ok = false;
    else rules.push(rule);
  });
  return ok ? rules : undefined;
}

function readRule(c: Checker, node: unknown, at: number, path: string, names: Map<string, number>): PolicyRule | undefined {
  const fields = readMap(c, node, at, path, 'a rule (a mapping with name, match and action)', RULE_KEYS);
  if (fields === undefined) return undefined;
  const before = c.issues.length;

  let name: string | undefined;
  const nameField = required(c, fields, 'name', at, path);
  if (nameField !== undefined) {
    name = readString(c, nameField, { nonEmpty: false });
    if (name !== undefined) {
      const firstAt = names.get(name);
      if (!RULE_NAME_RE.test(name) || name.length > MAX_RULE_NAME) {
        c.report(nameField.valueOffset, nameField.path, `invalid rule name "${name}" (lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most ${MAX_RULE_NAME} characters)`);
      } else if (name === 'default') {
        c.report(nameField.valueOffset, nameField.path, 'the rule name "default" is reserved for the policy\'s default action');
      } else if (firstAt !== undefined) {
        c.report(nameField.valueOffset, nameField.path, `duplicate rule name "${name}" (first defined at line ${firstAt})`);
      } else {
        names.set(name, c.lineOf(nameField.valueOffset));
      }
    }
  }

  const descriptionField = fields.get('description');
  const description = descriptionField === undefined ? undefined : readString(c, descriptionField, { nonEmpty: false });
  const matchField = required(c, fields, 'match', at, path);
  const match = matchField === undefined ? undefined : readMatch(c, matchField);
  const actionField = required(c, fields, 'action', at, path);
  const action = actionField === undefined ? undefined : readAction(c, actionField);
  const reasonField = fields.get('reason');
  const reason = reasonField === undefined ? undefined : readString(c, reasonField, { nonEmpty: true });

  let autoApprove: AutoApprove | undefined;
  const autoField = fields.get('autoApprove');
  if (autoField !== undefined) {
    autoApprove = readAutoApprove(c, autoField);
    if (action !== undefined && action !== 'approval') {
      c.report(autoField.keyOffset, autoField.path, `autoApprove is only valid with action: approval (this rule's action is ${action})`);
    }
  }

  if (c.issues.length > before || name === undefined || match === undefined || action === undefined) return undefined;
  return {
    name,
    ...(description === undefined ? {} : { description }),
    match,
    action,
    ...(reason === undefined ? {} : { reason }),
    ...(autoApprove === undefined ? {} : { autoApprove }),
  };
}

function readRecording(c: Checker, field: Field): RecordingSettings | undefined {
  const fields = readMap(c, field.value, field.valueOffset, field.path, 'a mapping with format (v2 or v3) and stdin (true or false)', RECORDING_KEYS);
  if (fields === undefined) return undefined;
  let format: CastFormat = DEFAULT_RECORDING.format;
  const formatField = fields.get('format');
  if (formatField !== undefined) {
    const v = readString(c, formatField, { nonEmpty: true });
    if (v === undefined) return undefined;
    if (!isCastFormat(v)) {
      c.report(formatField.valueOffset, formatField.path, `unknown recording format "${v}" (expected ${CAST_FORMATS.join(' or ')})`);
      return undefined;
    }
    format = v;
  }
  const stdinField = fields.get('stdin');
  const stdin = stdinField === undefined ? DEFAULT_RECORDING.stdin : readBoolean(c, stdinField);
  if (stdin === undefined) return undefined;
  return { format, stdin };
}

function readAutoApprove(c: Checker, field: Field): AutoApprove | undefined {
  const fields = readMap(c, field.value, field.valueOffset, field.path, 'a mapping with ttlSeconds (and optionally maxSessions)', AUTO_APPROVE_KEYS);
  if (fields === undefined) return undefined;
  const ttlField = required(c, fields, 'ttlSeconds', field.valueOffset, field.path);
  const ttlSeconds = ttlField === undefined ? undefined : readInteger(c, ttlField, 1, MAX_AUTO_APPROVE_TTL_SECONDS);
  const maxField = fields.get('maxSessions');
  const maxSessions = maxField === undefined ? undefined : readInteger(c, maxField, 1, 1_000_000);
  if (ttlSeconds === undefined || (maxField !== undefined && maxSessions === undefined)) return undefined;
  return { ttlSeconds, ...(maxSessions === undefined ? {} : { maxSessions }) };
}

const VERB_HINTS: Record<string, string> = {
  exec: 'exec is not a verb: it is `create` on pods/exec; match it with streams: [exec]',
  attach: 'attach is not a verb: it is `create` on pods/attach; match it with streams: [attach]',
  portforward: 'portforward is not a verb: it is `create` on pods/portforward; match it with streams: [portforward]',
  'port-forward': 'port-forward is not a verb: it is `create` on pods/portforward; match it with streams: [portforward]',
  proxy: 'proxy is not a verb: match resources: ["pods/proxy"] or ["services/proxy"]',
  impersonate: 'impersonate is not a verb here: match impersonation: true',
};

function readMatch(c: Checker, field: Field): PolicyMatch | undefined {
  const fields = readMap(c, field.value, field.valueOffset, field.path, 'a mapping of match fields (use {} to match every request)', MATCH_KEYS);
  if (fields === undefined) return undefined;
  const before = c.issues.length;
  const list = (key: string, check: (s: string) => string | undefined): Item<string>[] | undefined => {
    const f = fields.get(key);
    return f === undefined ? undefined : readStringList(c, f, check);
  };

  const verbs = list('verbs', (s) => (s === '*' || ALL_VERBS.includes(s) ? undefined : (VERB_HINTS[s] ?? oneOf(s, 'verb', [...ALL_VERBS, '*']))));
  const apiGroups = list('apiGroups', checkApiGroup);
  const resources = list('resources', (s) => {
    const p = parseResourcePattern(s);
    return typeof p === 'string' ? p : undefined;
  });
  const namespaces = list('namespaces', (s) => checkNameGlob(s, 'namespace', { allowEmpty: true, dnsLabel: true }));
  const names = list('names', (s) => checkNameGlob(s, 'name', { allowEmpty: true, dnsLabel: false }));
  const agents = list('agents', (s) => checkNameGlob(s, 'agent', { allowEmpty: false, dnsLabel: false }));
  const nonResourcePaths = list('nonResourcePaths', checkPathPattern);
  const streams = list('streams', (s) => ((STREAM_OPERATIONS as readonly string[]).includes(s) ? undefined : oneOf(s, 'stream', STREAM_OPERATIONS, { 'port-forward': 'portforward' })));
  const commandsField = fields.get('commands');
  const commands = commandsField === undefined ? undefined : readArgvPatterns(c, commandsField);
  const impersonationField = fields.get('impersonation');
  const impersonation = impersonationField === undefined ? undefined : readBoolean(c, impersonationField);

  // Cross-field checks: which kind of request the rule is about, and verbs that fit that kind.
  const resourceKeys = RESOURCE_ONLY_KEYS.filter((k) => fields.has(k));
  const pathsField = fields.get('nonResourcePaths');
  if (pathsField !== undefined && resourceKeys.length > 0) {
    c.report(pathsField.keyOffset, pathsField.path, `nonResourcePaths cannot be combined with ${resourceKeys.join(', ')}: a rule matches either resource or non-resource requests; split it into two rules`);
  }
  if (verbs !== undefined) {
    for (const verb of verbs) {
      if (verb.value === '*') continue;
      if (pathsField !== undefined && !NON_RESOURCE_VERBS.includes(verb.value)) {
        c.report(verb.offset, verb.path, `"${verb.value}" is not a verb of non-resource requests (expected one of ${NON_RESOURCE_VERBS.join(', ')}, *)`);
      } else if (resourceKeys.length > 0 && !(RESOURCE_VERBS as readonly string[]).includes(verb.value)) {
        c.report(verb.offset, verb.path, `"${verb.value}" is not a verb of resource requests (expected one of ${RESOURCE_VERBS.join(', ')}, *)`);
      }
    }
  }
  const streamsField = fields.get('streams');
  const streamish = streamsField ?? commandsField;
  if (streamish !== undefined && verbs !== undefined && !verbs.some((v) => v.value === 'create' || v.value === '*')) {
    c.report(streamish.keyOffset, streamish.path, 'exec, attach and portforward are `create` requests; with these verbs the rule can never match (add create or remove verbs)');
  }
  if (commandsField !== undefined && streams !== undefined && !streams.some((s) => s.value === 'exec')) {
    c.report(commandsField.keyOffset, commandsField.path, `commands match only exec requests; with streams: [${streams.map((s) => s.value).join(', ')}] the rule can never match (add exec to streams or remove commands)`);
  }

  if (c.issues.length > before) return undefined;
  const values = (items: Item<string>[] | undefined): string[] | undefined => items?.map((i) => i.value);
  const match: Record<string, unknown> = {
    verbs: values(verbs),
    apiGroups: values(apiGroups),
    resources: values(resources),
    namespaces: values(namespaces),
    names: values(names),
    agents: values(agents),
    nonResourcePaths: values(nonResourcePaths),
    streams: values(streams),
    commands: commands?.map((i) => i.value),
    impersonation,
  };
  for (const key of Object.keys(match)) if (match[key] === undefined) delete match[key];
  return match as PolicyMatch;
}

// Label and field selectors, as kubectl sends them (`-l`, `--field-selector`, and the
// `metadata.name=X` field selector that `kubectl delete --wait` and `get -w NAME` use).
import type { KubeObject } from '../store.js';
import { ApiError } from './respond.js';

type Predicate = (obj: KubeObject) => boolean;

function parseTerms(selector: string): Array<{ key: string; op: '=' | '!=' | 'exists' | '!exists'; value: string }> {
  return selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '')
    .map((term) => {
      const ne = term.indexOf('!=');
      if (ne > 0) return { key: term.slice(0, ne).trim(), op: '!=' as const, value: term.slice(ne + 2).trim() };
      const eq = term.indexOf('=');
      if (eq > 0) return { key: term.slice(0, eq).trim(), op: '=' as const, value: term.slice(eq + 1).replace(/^=/, '').trim() };
      if (term.startsWith('!')) return { key: term.slice(1).trim(), op: '!exists' as const, value: '' };
      return { key: term, op: 'exists' as const, value: '' };
    });
}

export function labelSelector(selector: string | null): Predicate {
  if (!selector) return () => true;
  const terms = parseTerms(selector);
  return (obj) =>
    terms.every(({ key, op, value }) => {
      const actual = obj.metadata.labels?.[key];
      switch (op) {
        case '=':
          return actual === value;
        case '!=':
          return actual !== value;
        case 'exists':
          return actual !== undefined;
        case '!exists':
          return actual === undefined;
      }
    });
}

const FIELDS: Record<string, (obj: KubeObject) => string | undefined> = {
  'metadata.name': (o) => o.metadata.name,
  'metadata.namespace': (o) => o.metadata.namespace,
  'status.phase': (o) => (o.status as { phase?: string } | undefined)?.phase,
};

export function fieldSelector(selector: string | null): Predicate {
  if (!selector) return () => true;
  const terms = parseTerms(selector);
  for (const t of terms) {
    if (!(t.key in FIELDS) || (t.op !== '=' && t.op !== '!=')) {
      throw ApiError.badRequest(`"${t.key}" is not a known field selector: only "metadata.name", "metadata.namespace", "status.phase"`);
    }
  }
  return (obj) => terms.every(({ key, op, value }) => (FIELDS[key]!(obj) === value) === (op === '='));
}

// A rule as written: the exact lines of one rule in a policy version's text, so a review record
// shows the rule that decided in the words of the policy file, not a re-rendering of it.
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';

/** The source text of rule `name` in policy `text`, or undefined when it is not there (or the text does not parse). */
export function ruleSource(text: string, name: string): string | undefined {
  const doc = parseDocument(text, { prettyErrors: false, version: '1.2' });
  if (doc.errors.length > 0 || !isMap(doc.contents)) return undefined;
  const rules = doc.contents.get('rules', true);
  if (!isSeq(rules)) return undefined;
  for (const item of rules.items) {
    if (!isMap(item) || !item.range) continue;
    const n = item.get('name', true);
    if (isScalar(n) && n.value === name) return lineSlice(text, item.range[0], item.range[1]);
  }
  return undefined;
}

/** Whole lines from the one holding `start` to the one holding `end - 1`, without trailing blank lines. */
function lineSlice(text: string, start: number, end: number): string {
  const from = text.lastIndexOf('\n', start - 1) + 1;
  const nl = text.indexOf('\n', Math.max(start, end - 1));
  const to = nl < 0 ? text.length : nl;
  return text.slice(from, to).replace(/\s+$/, '');
}

import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_YAML } from './default-policy.js';
import { builtInPolicy } from './load.js';
import { ruleSource } from './rule-source.js';

const TEXT = `apiVersion: kube-bastion/v1
kind: Policy
rules:
  # first
  - name: one
    match: { verbs: [get] }
    action: allow

  - name: two
    match:
      resources: [secrets]
    action: approval
    reason: "secrets"
`;

describe('ruleSource', () => {
  it('returns the exact lines of the named rule', () => {
    expect(ruleSource(TEXT, 'one')).toBe('  - name: one\n    match: { verbs: [get] }\n    action: allow');
    expect(ruleSource(TEXT, 'two')).toBe('  - name: two\n    match:\n      resources: [secrets]\n    action: approval\n    reason: "secrets"');
  });

  it('is undefined for an unknown rule, `default`, or text that is not a policy', () => {
    expect(ruleSource(TEXT, 'three')).toBeUndefined();
    expect(ruleSource(TEXT, 'default')).toBeUndefined();
    expect(ruleSource('rules: [', 'one')).toBeUndefined();
    expect(ruleSource('- a\n- b\n', 'one')).toBeUndefined();
  });

  it('finds every rule of the built-in policy', () => {
    for (const rule of builtInPolicy().document.rules) {
      const text = ruleSource(DEFAULT_POLICY_YAML, rule.name);
      expect(text, rule.name).toContain(`name: ${rule.name}`);
    }
  });
});

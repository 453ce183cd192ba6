import { describe, expect, it } from 'vitest';
import { isBastionError } from '../errors/index.js';
import { formatIssues, issueHeadline } from './issues.js';
import { parsePolicy } from './load.js';
import { validatePolicyText } from './validate.js';

const HEAD = 'apiVersion: kube-bastion/v1\nkind: Policy\ndefault: deny\nrules:\n';

/** The `file:line:col: path: message` lines for a policy text (which must be invalid). */
function problems(text: string): string[] {
  const result = validatePolicyText(text, 'policy.yaml');
  if (result.ok) throw new Error('expected the policy to be invalid');
  return result.issues.map(issueHeadline);
}

describe('policy validation', () => {
  it('accepts a policy using every field', () => {
    const result = validatePolicyText(
      `${HEAD}  - name: team-exec
    description: the payments team may exec in its own namespaces, for an hour at a time
    match:
      verbs: [create]
      apiGroups: [""]
      resources: ["pods/exec", "pods/attach"]
      namespaces: ["payments-*", ""]
      names: ["web-*"]
      agents: [claude-1, "ci-*"]
      streams: [exec, attach]
      impersonation: false
    action: approval
    reason: needs a second pair of eyes
    autoApprove: { ttlSeconds: 3600, maxSessions: 3 }
  - name: metrics
    match: { verbs: ["*"], nonResourcePaths: ["/metrics", "/debug/*"] }
    action: deny
  - name: everything-else
    match: {}
    action: allow
`,
      'policy.yaml',
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.document.rules[0]).toEqual({
      name: 'team-exec',
      description: 'the payments team may exec in its own namespaces, for an hour at a time',
      match: {
        verbs: ['create'],
        apiGroups: [''],
        resources: ['pods/exec', 'pods/attach'],
        namespaces: ['payments-*', ''],
        names: ['web-*'],
        agents: ['claude-1', 'ci-*'],
        streams: ['exec', 'attach'],
        impersonation: false,
      },
      action: 'approval',
      reason: 'needs a second pair of eyes',
      autoApprove: { ttlSeconds: 3600, maxSessions: 3 },
    });
    expect(result.document.rules[2]).toEqual({ name: 'everything-else', match: {}, action: 'allow' });
  });

  it('defaults `default` to deny', () => {
    const result = validatePolicyText('apiVersion: kube-bastion/v1\nkind: Policy\nrules: []\n', 'p.yaml');
    expect(result.ok && result.document.default).toBe('deny');
  });

  describe('YAML syntax errors', () => {
    it('unclosed flow sequence', () => {
      expect(problems(`${HEAD}  - name: a\n    match: { verbs: [get, list }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:32: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]',
        'policy.yaml:7:5: YAML: Flow map in block collection must be sufficiently indented and end with a }',
      ]);
    });
    it('bad indentation', () => {
      expect(problems(`${HEAD}  - name: a\n    match: {}\n   action: allow\n`)).toEqual(['policy.yaml:7:1: YAML: Sequence item without - indicator']);
    });
    it('tab indentation', () => {
      expect(problems(`${HEAD}\t- name: a\n`)).toEqual(['policy.yaml:5:1: YAML: Tabs are not allowed as indentation']);
    });
    it('duplicate key', () => {
      expect(problems(`${HEAD}  - name: a\n    match: {}\n    action: allow\n    action: deny\n`)).toEqual(['policy.yaml:8:5: YAML: Map keys must be unique']);
    });
    it('unknown tag', () => {
      expect(problems(`${HEAD}  - name: !foo a\n    match: {}\n    action: allow\n`)).toEqual(['policy.yaml:5:11: YAML: Unresolved tag: !foo']);
    });
    it('aliases', () => {
      expect(problems(`${HEAD}  - name: a\n    match: &m { verbs: [get] }\n    action: allow\n  - name: b\n    match: *m\n    action: allow\n`)).toEqual([
        'policy.yaml:9:12: rules[1].match: YAML anchors and aliases are not supported in a policy; write the value out',
      ]);
    });
  });

  describe('document errors', () => {
    it('empty file', () => {
      expect(problems('')).toEqual(['policy.yaml:1:1: the policy is empty; expected a mapping with apiVersion: kube-bastion/v1, kind: Policy, default and rules']);
      expect(problems('# only a comment\n')).toHaveLength(1);
    });
    it('top level is not a mapping', () => {
      expect(problems('- a\n- b\n')).toEqual(['policy.yaml:1:1: expected a mapping at the top level, got a list']);
    });
    it('wrong apiVersion, kind and rules type', () => {
      expect(problems('apiVersion: v1\nkind: policy\nrules: {}\n')).toEqual([
        'policy.yaml:1:13: apiVersion: unsupported apiVersion "v1" (expected kube-bastion/v1)',
        'policy.yaml:2:7: kind: unsupported kind "policy" (expected Policy)',
        'policy.yaml:3:8: rules: expected a list of rules, got a mapping',
      ]);
    });
    it('missing required keys', () => {
      expect(problems('\n\nkind: Policy\n')).toEqual([
        'policy.yaml:3:1: missing required key "apiVersion"',
        'policy.yaml:3:1: missing required key "rules"',
      ]);
    });
    it('unknown keys, with a suggestion', () => {
      expect(problems(`apiVersion: kube-bastion/v1\nkind: Policy\ndefaultAction: deny\nrules:\n  - name: a\n    match: { verb: [get] }\n    action: allow\n    ttl: 5\n`)).toEqual([
        'policy.yaml:3:1: defaultAction: unknown key "defaultAction" (did you mean "default"?); expected one of apiVersion, kind, description, recording, default, rules',
        'policy.yaml:6:14: rules[0].match.verb: unknown key "verb" (did you mean "verbs"?); expected one of verbs, apiGroups, resources, namespaces, names, agents, nonResourcePaths, streams, commands, impersonation',
        'policy.yaml:8:5: rules[0].ttl: unknown key "ttl"; expected one of name, description, match, action, reason, autoApprove',
      ]);
    });
  });

  describe('commands (argv patterns)', () => {
    it('accepts exact argv, globs within an argument and a final "**"', () => {
      const result = validatePolicyText(`${HEAD}  - name: probes\n    match:\n      commands:\n        - [test, -d, "*"]\n        - [ls, "**"]\n        - ["cat", "/var/log/*.log"]\n        - [""]\n    action: allow\n`, 'p.yaml');
      expect(result.ok && result.document.rules[0]!.match).toEqual({ commands: [['test', '-d', '*'], ['ls', '**'], ['cat', '/var/log/*.log'], ['']] });
    });
    it('an empty list, an empty pattern and a pattern that is not a list', () => {
      expect(problems(`${HEAD}  - name: a\n    match: { commands: [] }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:24: rules[0].match.commands: an empty list matches nothing; remove "commands" to match any command',
      ]);
      expect(problems(`${HEAD}  - name: a\n    match: { commands: [[]] }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:25: rules[0].match.commands[0]: an empty argv pattern matches nothing (every exec has a command); remove it',
      ]);
      expect(problems(`${HEAD}  - name: a\n    match: { commands: ["test -d *"] }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:25: rules[0].match.commands[0]: expected an argv pattern (a list of strings, one per argument), got the string "test -d *" (write ["test", "-d", "*"])',
      ]);
      expect(problems(`${HEAD}  - name: a\n    match: { commands: ls }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:24: rules[0].match.commands: expected a list of argv patterns (e.g. [["test", "-d", "*"], ["ls", "**"]]), got the string "ls"',
      ]);
    });
    it('"**" only as the whole last element, and not alone', () => {
      expect(problems(`${HEAD}  - name: a\n    match:\n      commands:\n        - ["**", rm]\n        - [ls, "-l**"]\n        - ["**"]\n    action: allow\n`)).toEqual([
        'policy.yaml:8:11: rules[0].match.commands[0]: "**" may only be the last element (it matches the remaining arguments), found at position 0',
        'policy.yaml:9:11: rules[0].match.commands[1]: "**" must be a whole element, got "-l**" (within one argument "*" already matches any run of characters)',
        'policy.yaml:10:11: rules[0].match.commands[2]: ["**"] matches every command; match every exec with streams: [exec] instead',
      ]);
    });
    it('numbers and booleans must be quoted; duplicates are named', () => {
      expect(problems(`${HEAD}  - name: a\n    match:\n      commands:\n        - [sleep, 5]\n        - [echo, true]\n        - [ls]\n        - ["ls"]\n    action: allow\n`)).toEqual([
        'policy.yaml:8:19: rules[0].match.commands[0][1]: expected a string, got the number 5 (quote it: "5")',
        'policy.yaml:9:18: rules[0].match.commands[1][1]: expected a string, got the boolean true (quote it: "true")',
        'policy.yaml:11:11: rules[0].match.commands[3]: duplicate argv pattern ["ls"]',
      ]);
    });
    it('commands match only exec: not with nonResourcePaths, other streams, or verbs without create', () => {
      expect(problems(`${HEAD}  - name: a\n    match: { nonResourcePaths: ["/x"], commands: [[ls]] }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:14: rules[0].match.nonResourcePaths: nonResourcePaths cannot be combined with commands: a rule matches either resource or non-resource requests; split it into two rules',
      ]);
      expect(problems(`${HEAD}  - name: a\n    match: { streams: [attach], commands: [[ls]] }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:33: rules[0].match.commands: commands match only exec requests; with streams: [attach] the rule can never match (add exec to streams or remove commands)',
      ]);
      expect(problems(`${HEAD}  - name: a\n    match: { verbs: [get], commands: [[ls]] }\n    action: allow\n`)).toEqual([
        'policy.yaml:6:28: rules[0].match.commands: exec, attach and portforward are `create` requests; with these verbs the rule can never match (add create or remove verbs)',
      ]);
    });
  });

  describe('rule errors', () => {
    it('unknown verb', () => {
      expect(problems(`${HEAD}  - name: a\n    match:\n      verbs: [get, lst]\n    action: allow\n`)).toEqual([
        'policy.yaml:7:20: rules[0].match.verbs[1]: unknown verb "lst" (expected one of get, list, watch, create, update, patch, delete, deletecollection, post, put, options, *; did you mean "list"?)',
      ]);
    });
    it('exec is not a verb', () => {
      expect(problems(`${HEAD}  - name: a\n    match: { verbs: [exec] }\n    action: approval\n`)).toEqual([
        'policy.yaml:6:22: rules[0].match.verbs[0]: exec is not a verb: it is `create` on pods/exec; match it with streams: [exec]',
      ]);
    });
    it('unknown action', () => {
      expect(problems(`${HEAD}  - name: a\n    match: {}\n    action: approve\n`)).toEqual([
        'policy.yaml:7:13: rules[0].action: unknown action "approve" (expected one of allow, approval, deny; did you mean "approval"?)',
      ]);
      expect(problems('apiVersion: kube-bastion/v1\nkind: Policy\ndefault: reject\nrules: []\n')).toEqual([
        'policy.yaml:3:10: default: unknown action "reject" (expected one of allow, approval, deny; did you mean "deny"?)',
      ]);
    });
    it('duplicate rule name', () => {
      expect(problems(`${HEAD}  - name: reads\n    match: {}\n    action: allow\n  - name: writes\n    match: {}\n    action: deny\n  - name: reads\n    match: {}\n    action: deny\n`)).toEqual([
        'policy.yaml:11:11: rules[2].name: duplicate rule name "reads" (first defined at line 5)',
      ]);
    });
    it('invalid and reserved rule names', () => {
      expect(problems(`${HEAD}  - name: Deny Secrets\n    match: {}\n    action: deny\n  - name: default\n    match: {}\n    action: deny\n`)).toEqual([
        'policy.yaml:5:11: rules[0].name: invalid rule name "Deny Secrets" (lower-case letters, digits, "-" and ".", starting and ending with a letter or digit, at most 100 characters)',
        'policy.yaml:8:11: rules[1].name: the rule name "default" is reserved for the policy\'s default action',
      ]);
    });
    it('wrong types', () => {
      expect(
        problems(`${HEAD}  - name: 42\n    match:\n      verbs: get\n      impersonation: "yes"\n      namespaces: [shop, 7]\n    action: [allow]\n  - {}\n  - just-a-string\n`),
      ).toEqual([
        'policy.yaml:5:11: rules[0].name: expected a string, got the number 42',
        'policy.yaml:7:14: rules[0].match.verbs: expected a list of strings, got the string "get" (write [get])',
        'policy.yaml:8:22: rules[0].match.impersonation: expected a boolean (true or false), got the string "yes"',
        'policy.yaml:9:26: rules[0].match.namespaces[1]: expected a string, got the number 7',
        'policy.yaml:10:13: rules[0].action: expected a string, got a list',
        'policy.yaml:11:5: rules[1]: missing required key "name"',
        'policy.yaml:11:5: rules[1]: missing required key "match"',
        'policy.yaml:11:5: rules[1]: missing required key "action"',
        'policy.yaml:12:5: rules[2]: expected a rule (a mapping with name, match and action), got the string "just-a-string"',
      ]);
    });
    it('match must be a mapping and lists must not be empty', () => {
      expect(problems(`${HEAD}  - name: a\n    match:\n    action: deny\n  - name: b\n    match: { verbs: [] }\n    action: deny\n`)).toEqual([
        'policy.yaml:6:11: rules[0].match: expected a mapping of match fields (use {} to match every request), got nothing (null)',
        'policy.yaml:9:21: rules[1].match.verbs: an empty list matches nothing; remove "verbs" to match any',
      ]);
    });
    it('bad patterns', () => {
      expect(
        problems(
          `${HEAD}  - name: a\n    match:\n      resources: [Pods, "pods/exec/x", "deployments.Apps", pods, pods]\n      namespaces: ["*shop", "Shop"]\n      apiGroups: ["apps/v1"]\n    action: deny\n  - name: b\n    match: { nonResourcePaths: ["metrics", "/a*b", "/x/../y"] }\n    action: deny\n`,
        ),
      ).toEqual([
        'policy.yaml:7:19: rules[0].match.resources[0]: resource names are lower-case plurals, e.g. "pods", not "Pods"',
        'policy.yaml:7:25: rules[0].match.resources[1]: too many "/" in "pods/exec/x" (expected RES, RES/SUB, RES/*, */SUB or *, optionally group-qualified as RES.GROUP (lower-case plural names))',
        'policy.yaml:7:40: rules[0].match.resources[2]: resource names are lower-case plurals, e.g. "pods", not "deployments.Apps"',
        'policy.yaml:7:66: rules[0].match.resources[4]: duplicate entry "pods"',
        'policy.yaml:8:20: rules[0].match.namespaces[0]: "*" may only end a namespace pattern ("prefix*"), got "*shop"',
        'policy.yaml:8:29: rules[0].match.namespaces[1]: invalid namespace "Shop" (lower-case letters, digits and "-", at most 63 characters)',
        'policy.yaml:9:19: rules[0].match.apiGroups[0]: invalid API group "apps/v1" (expected "" for the core group, "*", or a group such as "apps")',
        'policy.yaml:12:33: rules[1].match.nonResourcePaths[0]: non-resource path "metrics" must start with "/" (or be "*")',
        'policy.yaml:12:44: rules[1].match.nonResourcePaths[1]: "*" may only end a path pattern, got "/a*b"',
        'policy.yaml:12:52: rules[1].match.nonResourcePaths[2]: non-resource path "/x/../y" is not canonical',
      ]);
    });
    it('resource and non-resource fields do not mix; verbs must fit the kind', () => {
      expect(
        problems(
          `${HEAD}  - name: a\n    match: { nonResourcePaths: ["/api"], namespaces: [x] }\n    action: deny\n  - name: b\n    match: { verbs: [list], nonResourcePaths: ["/api"] }\n    action: deny\n  - name: c\n    match: { verbs: [post], resources: [pods] }\n    action: deny\n  - name: d\n    match: { verbs: [get], streams: [exec] }\n    action: deny\n`,
        ),
      ).toEqual([
        'policy.yaml:6:14: rules[0].match.nonResourcePaths: nonResourcePaths cannot be combined with namespaces: a rule matches either resource or non-resource requests; split it into two rules',
        'policy.yaml:9:22: rules[1].match.verbs[0]: "list" is not a verb of non-resource requests (expected one of get, post, put, patch, delete, options, *)',
        'policy.yaml:12:22: rules[2].match.verbs[0]: "post" is not a verb of resource requests (expected one of get, list, watch, create, update, patch, delete, deletecollection, *)',
        'policy.yaml:15:28: rules[3].match.streams: exec, attach and portforward are `create` requests; with these verbs the rule can never match (add create or remove verbs)',
      ]);
    });
    it('unknown stream', () => {
      expect(problems(`${HEAD}  - name: a\n    match: { streams: [port-forward] }\n    action: deny\n`)).toEqual([
        'policy.yaml:6:24: rules[0].match.streams[0]: unknown stream "port-forward" (expected one of exec, attach, portforward; did you mean "portforward"?)',
      ]);
    });
    it('autoApprove: only with approval, bounded ttl, integer sessions', () => {
      expect(
        problems(
          `${HEAD}  - name: a\n    match: {}\n    action: allow\n    autoApprove: { ttlSeconds: 60 }\n  - name: b\n    match: {}\n    action: approval\n    autoApprove: { ttlSeconds: 0, maxSessions: 1.5 }\n  - name: c\n    match: {}\n    action: approval\n    autoApprove: {}\n`,
        ),
      ).toEqual([
        "policy.yaml:8:5: rules[0].autoApprove: autoApprove is only valid with action: approval (this rule's action is allow)",
        'policy.yaml:12:32: rules[1].autoApprove.ttlSeconds: must be between 1 and 604800, got 0',
        'policy.yaml:12:48: rules[1].autoApprove.maxSessions: expected an integer, got the number 1.5',
        'policy.yaml:16:18: rules[2].autoApprove: missing required key "ttlSeconds"',
      ]);
    });
  });

  describe('as a load error', () => {
    it('is CONFIG_INVALID and shows each problem with its source line and a caret', () => {
      const text = `${HEAD}  - name: a\n    match:\n      verbs: [get, lst]\n    action: allow\n`;
      let error: unknown;
      try {
        parsePolicy(text, 'policy.yaml');
      } catch (err) {
        error = err;
      }
      expect(isBastionError(error, 'CONFIG_INVALID')).toBe(true);
      if (!isBastionError(error)) return;
      expect(error.message).toBe(
        [
          'policy policy.yaml is invalid (1 problem):',
          'policy.yaml:7:20: rules[0].match.verbs[1]: unknown verb "lst" (expected one of get, list, watch, create, update, patch, delete, deletecollection, post, put, options, *; did you mean "list"?)',
          '  7 |       verbs: [get, lst]',
          '    |                    ^',
        ].join('\n'),
      );
      expect(error.details?.['issues']).toEqual([
        expect.objectContaining({ file: 'policy.yaml', line: 7, col: 20, path: 'rules[0].match.verbs[1]' }),
      ]);
    });

    it('formats tab-indented lines with the caret in place', () => {
      const out = formatIssues([{ file: 'f', line: 1, col: 3, path: '', message: 'm' }], '\t\tx: 1\n');
      expect(out).toBe('f:1:3: m\n  1 | \t\tx: 1\n    | \t\t^');
    });
  });
});

describe('recording settings', () => {
  const base = 'apiVersion: kube-bastion/v1\nkind: Policy\ndefault: deny\nrules: []\n';
  it('default to asciicast v2 with stdin recorded, and accept v3 without stdin', () => {
    const plain = validatePolicyText(base, 'p.yaml');
    expect(plain.ok && plain.document.recording).toBeUndefined();
    const set = validatePolicyText(`${base}recording: { format: v3, stdin: false }\n`, 'p.yaml');
    expect(set.ok && set.document.recording).toEqual({ format: 'v3', stdin: false });
  });

  it('name the line of a bad format or a bad stdin value', () => {
    const bad = validatePolicyText(`${base}recording:\n  format: v4\n  stdin: maybe\n`, 'p.yaml');
    expect(bad.ok).toBe(false);
    const issues = bad.ok ? [] : bad.issues.map((i) => `${i.line}:${i.path}`);
    expect(issues).toEqual(['6:recording.format']);
  });
});

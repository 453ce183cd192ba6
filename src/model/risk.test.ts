import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { auditedRequest, describeHeldBody, duplicateJsonKey, patchTypeOf, REDACTED } from './held-body.js';
import { summarizeRisk } from './risk.js';
import { MAX_HELD_BODY_TEXT } from './approval-schema.js';

const whole = (resource: string) => ({ resource, patch: null });
const high = (s: { findings: { level: string; text: string }[] }): string[] => s.findings.filter((f) => f.level === 'high').map((f) => f.text);
const texts = (s: { findings: { level: string; text: string }[] }): string[] => s.findings.map((f) => `${f.level}: ${f.text}`);

const PRIVILEGED_SPEC = {
  hostNetwork: true,
  hostPID: true,
  serviceAccountName: 'builder',
  securityContext: { runAsUser: 0 },
  containers: [
    {
      name: 'app',
      image: 'busybox:1.36',
      command: ['sh', '-c'],
      args: ['id'],
      securityContext: { privileged: true, allowPrivilegeEscalation: true, capabilities: { add: ['SYS_ADMIN', 'NET_ADMIN'] } },
      ports: [{ containerPort: 80, hostPort: 8080 }],
      envFrom: [{ secretRef: { name: 'db' } }],
    },
  ],
  initContainers: [{ name: 'init', image: 'alpine', securityContext: { runAsUser: 0 } }],
  volumes: [
    { name: 'root', hostPath: { path: '/' } },
    { name: 'creds', secret: { secretName: 'db' } },
    { name: 'token', projected: { sources: [{ serviceAccountToken: { audience: 'vault', path: 't' } }] } },
  ],
};

describe('summarizeRisk: workloads', () => {
  it('a privileged pod: every finding, in order', () => {
    const s = summarizeRisk({ kind: 'Pod', apiVersion: 'v1', metadata: { name: 'x' }, spec: PRIVILEGED_SPEC }, whole('pods'));
    expect(s.subject).toBe('Pod "x"');
    expect(s.patch).toBe(false);
    expect(texts(s)).toEqual([
      "high: hostNetwork: true (shares the node's network namespace)",
      "high: hostPID: true (shares the node's process namespace)",
      'high: pod runs as root (securityContext.runAsUser: 0)',
      'info: service account: builder',
      'notice: the service account token is mounted (automountServiceAccountToken: not set)',
      'info: initContainer init: image alpine',
      'high: initContainer init runs as root (securityContext.runAsUser: 0)',
      'info: container app: image busybox:1.36',
      'info: container app: command ["sh","-c"]',
      'info: container app: args ["id"]',
      'high: container app is privileged (securityContext.privileged: true)',
      'notice: container app: allowPrivilegeEscalation: true',
      'high: container app adds capabilities SYS_ADMIN, NET_ADMIN',
      'notice: container app: hostPort 8080 (listens on the node)',
      'notice: container app: environment from secret db',
      'high: volume root: hostPath / (a directory of the node)',
      'notice: volume creds: secret db',
      'notice: volume token: projected service-account token (audience vault)',
    ]);
  });

  it.each([
    ['Deployment', 'deployments', { spec: { template: { spec: PRIVILEGED_SPEC } } }],
    ['StatefulSet', 'statefulsets', { spec: { template: { spec: PRIVILEGED_SPEC } } }],
    ['DaemonSet', 'daemonsets', { spec: { template: { spec: PRIVILEGED_SPEC } } }],
    ['ReplicaSet', 'replicasets', { spec: { template: { spec: PRIVILEGED_SPEC } } }],
    ['Job', 'jobs', { spec: { template: { spec: PRIVILEGED_SPEC } } }],
    ['ReplicationController', 'replicationcontrollers', { spec: { template: { spec: PRIVILEGED_SPEC } } }],
    ['CronJob', 'cronjobs', { spec: { jobTemplate: { spec: { template: { spec: PRIVILEGED_SPEC } } } } }],
    ['PodTemplate', 'podtemplates', { template: { spec: PRIVILEGED_SPEC } }],
  ])('%s: the pod spec where that kind keeps it', (kind, resource, rest) => {
    const s = summarizeRisk({ kind, metadata: { name: 'w' }, ...rest }, whole(resource));
    expect(s.subject).toBe(`${kind} "w"`);
    expect(high(s)).toContain('container app is privileged (securityContext.privileged: true)');
    expect(high(s)).toContain('volume root: hostPath / (a directory of the node)');
  });

  it('a plain pod has no high findings; automount false is said', () => {
    const s = summarizeRisk({ kind: 'Pod', metadata: { name: 'ok' }, spec: { automountServiceAccountToken: false, containers: [{ name: 'c', image: 'nginx' }] } }, whole('pods'));
    expect(high(s)).toEqual([]);
    expect(texts(s)).toContain('info: automountServiceAccountToken: false');
  });

  it('a List: each item, prefixed', () => {
    const s = summarizeRisk({ kind: 'List', items: [{ kind: 'Pod', metadata: { name: 'a' }, spec: { hostIPC: true } }] }, whole('pods'));
    expect(s.subject).toBe('List of 1 items');
    expect(high(s)).toEqual(['items[0] Pod "a": hostIPC: true (shares the node\'s IPC namespace)']);
  });

  it('a merge patch of a deployment: the kind from the resource, and it says it is a patch', () => {
    const s = summarizeRisk({ spec: { template: { spec: { containers: [{ name: 'app', securityContext: { privileged: true } }] } } } }, { resource: 'deployments', patch: 'strategic' });
    expect(s.subject).toBe('strategic patch of Deployment');
    expect(s.patch).toBe(true);
    expect(high(s)).toEqual(['container app is privileged (securityContext.privileged: true)']);
    expect(texts(s)).toContain('notice: this is a patch: the summary covers the fields it sets, not the whole object it produces');
  });

  it('a JSON patch: each operation, and risky values flagged', () => {
    const s = summarizeRisk(
      [
        { op: 'replace', path: '/spec/hostNetwork', value: true },
        { op: 'add', path: '/spec/containers/0/securityContext', value: { privileged: true } },
      ],
      { resource: 'pods', patch: 'json' },
    );
    expect(s).toMatchObject({ subject: 'JSON patch of pods', patch: true });
    expect(high(s)).toEqual(['/spec/hostNetwork: sets hostNetwork: true', '/spec/containers/0/securityContext: sets privileged: true']);
  });
});

describe('summarizeRisk: RBAC, secrets, webhooks', () => {
  it('a ClusterRole with wildcards, escalation verbs, secrets and exec', () => {
    const s = summarizeRisk(
      {
        kind: 'ClusterRole',
        metadata: { name: 'r' },
        rules: [
          { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
          { apiGroups: ['rbac.authorization.k8s.io'], resources: ['clusterroles'], verbs: ['bind', 'escalate'] },
          { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] },
          { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] },
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get'] },
        ],
      },
      whole('clusterroles'),
    );
    expect(high(s)).toEqual([
      'rule 1: wildcard in verbs, apiGroups, resources',
      'rule 1: access to secrets (*)',
      'rule 2: bind, escalate (changes permissions or identity)',
      'rule 3: access to secrets (get, list)',
      'rule 4: pods/exec (runs code or mints credentials)',
    ]);
    expect(texts(s)).toContain('info: rule 5: verbs get on resources configmaps in API groups ""');
  });

  it("RBAC's */exec form names pods/exec too (and */token, */ephemeralcontainers)", () => {
    const s = summarizeRisk(
      { kind: 'Role', metadata: { name: 'r', namespace: 'demo' }, rules: [{ apiGroups: [''], resources: ['*/exec', '*/token', '*/status'], verbs: ['create'] }] },
      whole('roles'),
    );
    expect(high(s)).toEqual(['rule 1: */exec, */token (runs code or mints credentials)']);
  });

  it('a ClusterRoleBinding to cluster-admin for everyone authenticated', () => {
    const s = summarizeRisk(
      { kind: 'ClusterRoleBinding', metadata: { name: 'b' }, roleRef: { kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'Group', name: 'system:authenticated' }, { kind: 'ServiceAccount', name: 'ci', namespace: 'build' }] },
      whole('clusterrolebindings'),
    );
    expect(texts(s)).toEqual([
      'high: binds ClusterRole cluster-admin cluster-wide',
      'high: subject Group system:authenticated (a broad group)',
      'info: subject ServiceAccount build/ci',
    ]);
  });

  it('a Secret: type and key names, never values; a service-account token is high', () => {
    const s = summarizeRisk({ kind: 'Secret', metadata: { name: 's', annotations: { 'kubernetes.io/service-account.name': 'admin' } }, type: 'kubernetes.io/service-account-token', data: { a: 'c2VjcmV0' }, stringData: { b: 'hunter2' } }, whole('secrets'));
    expect(texts(s)).toEqual([
      'info: type kubernetes.io/service-account-token',
      'high: a service-account token for service account admin (the cluster writes a token into it)',
      'info: keys: a, b (values not shown)',
    ]);
    expect(JSON.stringify(s)).not.toContain('hunter2');
  });

  it('admission webhooks: mutating, rules, failurePolicy, where requests go', () => {
    const s = summarizeRisk(
      {
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: 'm' },
        webhooks: [{ name: 'w.example.com', rules: [{ operations: ['*'], apiGroups: ['*'], resources: ['*'] }], failurePolicy: 'Ignore', clientConfig: { url: 'https://evil.example.com/hook' } }],
      },
      whole('mutatingwebhookconfigurations'),
    );
    expect(texts(s)).toEqual([
      'high: webhook w.example.com: mutating (can change every object it matches)',
      'notice: webhook w.example.com: * on * in API groups *',
      'notice: webhook w.example.com: failurePolicy Ignore (requests pass when the webhook is down)',
      'high: webhook w.example.com: sends admission requests (with the objects) to https://evil.example.com/hook',
    ]);
  });

  it('any JSON value gives a summary; findings are capped', () => {
    expect(summarizeRisk(42, whole('pods')).subject).toBe('a body that is not an object');
    expect(summarizeRisk({ kind: 'ConfigMap', metadata: { name: 'c' } }, whole('configmaps')).findings).toEqual([{ level: 'info', text: 'no risk rules for kind ConfigMap; read the body' }]);
    const many = summarizeRisk({ kind: 'Pod', spec: { containers: Array.from({ length: 100 }, (_, i) => ({ name: `c${i}`, image: 'x', command: ['y'] })) } }, whole('pods'));
    expect(many.findings).toHaveLength(201);
    expect(many.findings[0]).toEqual({ level: 'high', text: 'this summary is incomplete: 2 notice or info findings of 202 are not listed; read the whole body before approving' });
  });

  it('the cap never drops a high finding: a privileged pod padded with 100 init containers (the review probe)', () => {
    const pad = Array.from({ length: 100 }, (_, i) => ({ name: `c${i}`, image: 'busybox', command: ['sleep', '1'] }));
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'padded', namespace: 'demo' },
      spec: {
        initContainers: pad,
        containers: [{ name: 'app', image: 'busybox', securityContext: { privileged: true, capabilities: { add: ['SYS_ADMIN'] } } }],
        volumes: [{ name: 'root', hostPath: { path: '/' } }],
      },
    };
    const s = summarizeRisk(pod, whole('pods'));
    expect(high(s)).toEqual([
      'this summary is incomplete: 3 notice or info findings of 206 are not listed; read the whole body before approving',
      'container app is privileged (securityContext.privileged: true)',
      'container app adds capabilities SYS_ADMIN',
      'volume root: hostPath / (a directory of the node)',
    ]);
    expect(s.findings.filter((f) => f.level !== 'high')).toHaveLength(200);
  });

  it('high findings past their own cap (1000) are counted in the incomplete finding', () => {
    const containers = Array.from({ length: 1002 }, (_, i) => ({ name: `p${i}`, securityContext: { privileged: true } }));
    const s = summarizeRisk({ kind: 'Pod', spec: { automountServiceAccountToken: false, containers } }, whole('pods'));
    expect(high(s)).toHaveLength(1001);
    expect(high(s)[0]).toBe('this summary is incomplete: 2 high and 804 notice or info findings of 2006 are not listed; read the whole body before approving');
  });

  it('seccomp and AppArmor unconfined, procMount Unmasked, shareProcessNamespace, the AppArmor annotation', () => {
    const s = summarizeRisk(
      {
        kind: 'Deployment',
        spec: {
          template: {
            metadata: { annotations: { 'container.apparmor.security.beta.kubernetes.io/app': 'unconfined', 'container.apparmor.security.beta.kubernetes.io/side': 'runtime/default' } },
            spec: {
              shareProcessNamespace: true,
              automountServiceAccountToken: false,
              securityContext: { seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' } },
              containers: [
                { name: 'app', image: 'x', securityContext: { procMount: 'Unmasked', seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' } } },
                { name: 'side', image: 'x', securityContext: { procMount: 'Default', seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'RuntimeDefault' } } },
              ],
            },
          },
        },
      },
      whole('deployments'),
    );
    expect(high(s)).toEqual([
      'pod: seccompProfile Unconfined (no syscall filter)',
      'pod: appArmorProfile Unconfined (no AppArmor confinement)',
      'container app: seccompProfile Unconfined (no syscall filter)',
      'container app: appArmorProfile Unconfined (no AppArmor confinement)',
      'container app: procMount: Unmasked (/proc of the node not masked)',
      'container app: AppArmor unconfined (annotation container.apparmor.security.beta.kubernetes.io/app)',
    ]);
    expect(texts(s)).toContain("notice: shareProcessNamespace: true (its containers see and signal each other's processes)");
  });

  it('a JSON patch that switches seccomp or AppArmor off, or unmasks /proc, is high', () => {
    const s = summarizeRisk(
      [
        { op: 'add', path: '/spec/template/spec/securityContext/seccompProfile/type', value: 'Unconfined' },
        { op: 'add', path: '/spec/template/spec/containers/0/securityContext/appArmorProfile', value: { type: 'Unconfined' } },
        { op: 'add', path: '/spec/template/spec/containers/0/securityContext/procMount', value: 'Unmasked' },
        { op: 'add', path: '/metadata/labels/type', value: 'Unconfined' },
      ],
      { resource: 'deployments', patch: 'json' },
    );
    expect(high(s)).toEqual([
      '/spec/template/spec/securityContext/seccompProfile/type: sets seccompProfile Unconfined',
      '/spec/template/spec/containers/0/securityContext/appArmorProfile: sets appArmorProfile Unconfined',
      '/spec/template/spec/containers/0/securityContext/procMount: sets procMount: Unmasked',
    ]);
  });

  it('RBAC: writing workloads and approving certificate signing requests are high', () => {
    const s = summarizeRisk(
      {
        kind: 'Role',
        rules: [
          { apiGroups: [''], resources: ['pods'], verbs: ['create'] },
          { apiGroups: ['apps'], resources: ['deployments', 'daemonsets'], verbs: ['patch', 'get'] },
          { apiGroups: ['certificates.k8s.io'], resources: ['certificatesigningrequests/approval'], verbs: ['update'] },
          { apiGroups: ['certificates.k8s.io'], resources: ['signers'], resourceNames: ['kubernetes.io/kube-apiserver-client'], verbs: ['approve'] },
          { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
        ],
      },
      whole('roles'),
    );
    expect(high(s)).toEqual([
      'rule 1: create on pods (runs pods as any service account of the namespace, with its secrets)',
      'rule 2: patch on deployments, daemonsets (runs pods as any service account of the namespace, with its secrets)',
      'rule 3: approves certificate signing requests (certificatesigningrequests/approval: update; mints credentials)',
      'rule 4: approve on signers (mints credentials)',
      'rule 5: impersonate (changes permissions or identity)',
    ]);
  });
});

describe('describeHeldBody', () => {
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const held = (body: unknown, resource: string, contentType = 'application/json') => {
    const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return { bytes, ...describeHeldBody(bytes, { contentType, resource, sha256: sha(bytes) }) };
  };

  it("a Secret's values are redacted in the text (the hash is of the real bytes); key names stay", () => {
    const secret = { kind: 'Secret', apiVersion: 'v1', metadata: { name: 'a', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"k":"dg=="}}' } }, data: { k: 'dg==' }, stringData: { s: 'plain' } };
    const { bytes, body, risk } = held(secret, 'secrets');
    expect(body).toEqual({
      contentType: 'application/json',
      bytes: bytes.length,
      sha256: sha(bytes),
      text: JSON.stringify({ ...secret, metadata: { name: 'a', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': REDACTED } }, data: { k: REDACTED }, stringData: { s: REDACTED } }, null, 2),
      truncated: false,
      redacted: true,
    });
    expect(risk.findings.map((f) => f.text)).toContain('keys: k, s (values not shown)');
  });

  it('the top-level object of a request for secrets is redacted whatever kind it claims; a Secret in a List too', () => {
    expect(held({ kind: 'ConfigMap', data: { k: 'v' } }, 'secrets').body.text).not.toContain('"v"');
    expect(held({ kind: 'List', items: [{ kind: 'Secret', data: { k: 'dg==' } }] }, 'pods').body.text).not.toContain('dg==');
    expect(held({ kind: 'ConfigMap', data: { k: 'visible' } }, 'configmaps').body).toMatchObject({ redacted: false });
  });

  it('a JSON patch of a secret has every value redacted; a merge patch its data', () => {
    const json = held([{ op: 'replace', path: '/data/k', value: 'c2VjcmV0' }], 'secrets', 'application/json-patch+json');
    expect(json.body.text).not.toContain('c2VjcmV0');
    expect(json.risk.findings.map((f) => f.text)).toEqual([`replace /data/k = "${REDACTED}"`]);
    expect(held({ data: { k: 'c2VjcmV0' } }, 'secrets', 'application/merge-patch+json').body.text).not.toContain('c2VjcmV0');
  });

  it('a body that is not JSON: shown as text, except for secrets; binary is never shown', () => {
    expect(held('a: b\n', 'configmaps', 'application/apply-patch+yaml').body).toMatchObject({ text: 'a: b\n', redacted: false });
    const secretYaml = held('data:\n  k: dg==\n', 'secrets', 'application/apply-patch+yaml');
    expect(secretYaml.body.text).toBeNull();
    expect(secretYaml.risk.findings[0]!.text).toBe('the body is not JSON: no summary, and it is not shown; decide on what you can verify');
    const binary = Buffer.from([0x6b, 0x38, 0x73, 0x00, 0xff, 0xfe]);
    expect(describeHeldBody(binary, { contentType: 'application/vnd.kubernetes.protobuf', resource: 'pods', sha256: sha(binary) }).body.text).toBeNull();
  });

  it('pretty-printed and capped, with a truncated flag, and a high finding saying how much is not shown', () => {
    const { body, risk } = held({ kind: 'ConfigMap', data: { big: 'x'.repeat(MAX_HELD_BODY_TEXT) } }, 'configmaps');
    expect(body.truncated).toBe(true);
    expect(body.text).toHaveLength(MAX_HELD_BODY_TEXT);
    expect(body.text!.startsWith('{\n  "kind": "ConfigMap"')).toBe(true);
    const length = JSON.stringify({ kind: 'ConfigMap', data: { big: 'x'.repeat(MAX_HELD_BODY_TEXT) } }, null, 2).length;
    expect(risk.findings[0]).toEqual({ level: 'high', text: `the body shown is cut at ${MAX_HELD_BODY_TEXT} of ${length} characters: ${length - MAX_HELD_BODY_TEXT} characters are not shown; decide on the summary and what you can verify` });
    const raw = held(`not json ${'y'.repeat(MAX_HELD_BODY_TEXT)}`, 'configmaps', 'text/plain');
    expect(raw.body.truncated).toBe(true);
    expect(high(raw.risk)).toEqual([`the body shown is cut at ${MAX_HELD_BODY_TEXT} of ${MAX_HELD_BODY_TEXT + 9} characters: 9 characters are not shown; decide on the summary and what you can verify`]);
  });

  it('the review probe: a privileged pod padded past both caps still shows its high findings and says the text is cut', () => {
    const pad = Array.from({ length: 100 }, (_, i) => ({ name: `c${i}`, image: 'busybox', command: ['sh', '-c', 'echo ' + 'x'.repeat(700)] }));
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'padded2', namespace: 'demo' }, spec: { initContainers: pad, containers: [{ name: 'app', image: 'busybox', securityContext: { privileged: true } }], volumes: [{ name: 'root', hostPath: { path: '/' } }] } };
    const { body, risk } = held(pod, 'pods');
    expect(body.truncated).toBe(true);
    expect(body.text).not.toContain('privileged');
    const highs = high(risk);
    expect(highs[0]).toMatch(/^the body shown is cut at 65536 of \d+ characters/);
    expect(highs[1]).toMatch(/^this summary is incomplete: \d+ notice or info findings/);
    expect(highs.slice(2)).toEqual(['container app is privileged (securityContext.privileged: true)', 'volume root: hostPath / (a directory of the node)']);
  });

  it('a body with a duplicate key: duplicateJsonKey names it (the endpoint refuses it); were it described, a high finding says so', () => {
    const text =
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup","namespace":"demo"},' +
      '"spec":{"hostPID":true,"containers":[{"name":"app","image":"busybox","securityContext":{"privileged":true}}]},' +
      '"spec":{"containers":[{"name":"app","image":"busybox"}]}}';
    const bytes = Buffer.from(text);
    expect(duplicateJsonKey(bytes, 'application/json')).toBe('spec');
    expect(duplicateJsonKey(bytes, 'application/strategic-merge-patch+json')).toBe('spec');
    // YAML that is JSON is read as JSON: the same rule.
    expect(duplicateJsonKey(bytes, 'application/apply-patch+yaml')).toBe('spec');
    expect(duplicateJsonKey(Buffer.from('{"a":{"sp\\u0065c":1,"spec":2}}'), null)).toBe('a.spec');
    expect(duplicateJsonKey(Buffer.from('{"spec":{},"Spec":{}}'), 'application/json')).toBeNull();
    // Not read as JSON: nothing to compare (shown as text, or not at all).
    expect(duplicateJsonKey(Buffer.from('spec: 1\nspec: 2\n'), 'application/yaml')).toBeNull();
    expect(duplicateJsonKey(bytes, 'application/vnd.kubernetes.protobuf')).toBeNull();
    expect(duplicateJsonKey(Buffer.from([0xff, 0xfe]), 'application/json')).toBeNull();
    expect(high(held(text, 'pods').risk)[0]).toBe('the body repeats the key spec: the API server merges both, this summary shows only the last; do not approve');
  });

  it('the media type alone decides JSON (a parameter naming protobuf does not turn the checks off), and bytes that are not UTF-8 are read as the API server reads them', () => {
    const text =
      '{"kind":"Pod","metadata":{"name":"dup","annotations":{"a":"X"}},"spec":{"hostPID":true,"containers":[{"name":"app","image":"busybox"}]},"spec":{"containers":[{"name":"app","image":"busybox"}]}}';
    expect(duplicateJsonKey(Buffer.from(text), 'application/json; x=protobuf')).toBe('spec');
    expect(duplicateJsonKey(Buffer.from(text), 'application/json;charset=cbor')).toBe('spec');
    // One byte that is not UTF-8, inside a string: Go's decoder reads it as U+FFFD and goes on.
    const spliced = Buffer.concat([Buffer.from(text.slice(0, text.indexOf('X'))), Buffer.from([0xff]), Buffer.from(text.slice(text.indexOf('X')))]);
    expect(duplicateJsonKey(spliced, 'application/json')).toBe('spec');
    const single = Buffer.concat([Buffer.from('{"kind":"Pod","metadata":{"name":"p","annotations":{"a":"'), Buffer.from([0xff]), Buffer.from('"}},"spec":{"hostPID":true,"containers":[]}}')]);
    const { body, risk } = describeHeldBody(single, { contentType: 'application/json', resource: 'pods', sha256: 'x' });
    expect(body.text).toContain('\ufffd');
    expect(high(risk)).toEqual(expect.arrayContaining([expect.stringContaining('not UTF-8'), expect.stringContaining('hostPID: true')]));
  });

  it('audit rows carry the body facts and the risk, not the text', () => {
    const { body, risk } = held({ kind: 'ConfigMap', data: { k: 'v' } }, 'configmaps');
    const request = { method: 'POST', path: '/api/v1/namespaces/demo/configmaps', body, risk };
    expect(auditedRequest(request)).toEqual({ ...request, body: { ...body, text: null } });
    expect(auditedRequest({ method: 'GET', path: '/x' })).toEqual({ method: 'GET', path: '/x' });
  });

  it('patch types by Content-Type', () => {
    expect(patchTypeOf('application/json-patch+json')).toBe('json');
    expect(patchTypeOf('application/merge-patch+json; charset=utf-8')).toBe('merge');
    expect(patchTypeOf('application/strategic-merge-patch+json')).toBe('strategic');
    expect(patchTypeOf('application/apply-patch+yaml')).toBe('apply');
    expect(patchTypeOf('application/json')).toBeNull();
    expect(patchTypeOf(null)).toBeNull();
  });
});

describe('Kubernetes protobuf bodies (what kubectl 1.33 typed commands send)', () => {
  // A minimal protobuf encoder: length-delimited fields only, which is all these messages need.
  const varint = (n: number): number[] => {
    const out: number[] = [];
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    return [...out, n];
  };
  const field = (no: number, value: Uint8Array | string): Uint8Array => {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    return Uint8Array.from([...varint((no << 3) | 2), ...varint(bytes.length), ...bytes]);
  };
  const msg = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);
  const envelope = (apiVersion: string, kind: string, raw: Uint8Array): Buffer =>
    Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), msg(field(1, msg(field(1, apiVersion), field(2, kind))), field(2, raw))]);
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

  it('a Secret: metadata, type and data decoded, values redacted', () => {
    const meta = msg(field(1, 'a'), field(3, 'demo'), field(11, msg(field(1, 'app'), field(2, 'web'))));
    const body = envelope('v1', 'Secret', msg(field(1, meta), field(2, msg(field(1, 'k'), field(2, 'v'))), field(3, 'Opaque')));
    const { body: shown, risk } = describeHeldBody(body, { contentType: 'application/vnd.kubernetes.protobuf', resource: 'secrets', sha256: sha(body) });
    expect(JSON.parse(shown.text!)).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a', namespace: 'demo', labels: { app: 'web' } }, data: { k: REDACTED }, type: 'Opaque' });
    expect(shown.redacted).toBe(true);
    expect(risk.findings.map((f) => `${f.level}: ${f.text}`)).toEqual([
      'info: the body is protobuf: shown as JSON, as far as kube-bastion reads it',
      'info: type Opaque',
      'info: keys: k (values not shown)',
    ]);
  });

  it('a metadata block given twice is merged, as protobuf merges it: the first cannot hide behind the second', () => {
    const first = msg(field(12, msg(field(1, 'kubernetes.io/service-account.name'), field(2, 'cluster-admin-sa'))));
    const second = msg(field(1, 'innocent'), field(12, msg(field(1, 'note'), field(2, 'x'))));
    const body = envelope('v1', 'Secret', msg(field(1, first), field(1, second), field(3, 'kubernetes.io/service-account-token')));
    const { body: shown } = describeHeldBody(body, { contentType: 'application/vnd.kubernetes.protobuf', resource: 'secrets', sha256: sha(body) });
    expect(JSON.parse(shown.text!).metadata).toEqual({ name: 'innocent', annotations: { 'kubernetes.io/service-account.name': 'cluster-admin-sa', note: 'x' } });
  });

  it('another kind: its metadata only, and the approver is told the spec is not shown', () => {
    const body = envelope('v1', 'Pod', msg(field(1, msg(field(1, 'p'))), field(2, msg(field(2, msg(field(1, 'c')))))));
    const { body: shown, risk } = describeHeldBody(body, { contentType: 'application/vnd.kubernetes.protobuf', resource: 'pods', sha256: sha(body) });
    expect(JSON.parse(shown.text!)).toEqual({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } });
    expect(risk.findings[1]).toEqual({ level: 'high', text: 'kube-bastion reads only the metadata of this protobuf body: its spec is not shown or summarized; decide on what you can verify' });
  });

  it('not the envelope, or malformed: not shown', () => {
    for (const bytes of [Buffer.from('k8s'), Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x0a, 0x7f])]) {
      expect(describeHeldBody(bytes, { contentType: 'application/vnd.kubernetes.protobuf', resource: 'secrets', sha256: sha(bytes) }).body.text).toBeNull();
    }
  });
});

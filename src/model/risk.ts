// What a held REST request's body would do, summarized for the approver: pod-spec-bearing workloads
// (images, commands, privileges, host namespaces and paths, capabilities, service account, volumes),
// RBAC objects, Secrets (type and key names, never values) and admission webhooks. Pure and total:
// any JSON value gives a summary, unknown shapes just give fewer findings. Patches are summarized
// for what they say (best effort), not for the object they produce.
import type { RiskFinding, RiskSummary } from './approval-schema.js';
import type { RiskLevel } from './vocabulary.js';

/** How a PATCH body is to be read (from its Content-Type); null for a whole object. */
export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

export interface RiskContext {
  /** The plural resource the request is for (`pods`, `clusterrolebindings`): names a patch's kind. */
  resource: string;
  patch: PatchType | null;
}

/**
 * A summary never grows without bound (a body is at most a few MiB, but of anything): notice and
 * info findings are capped at MAX_FINDINGS; high findings are never dropped for them, only past
 * MAX_HIGH_FINDINGS (a body of thousands of privileged containers), and a cut summary says so as a
 * high finding first, so padding a body never hides what matters.
 */
const MAX_FINDINGS = 200;
const MAX_HIGH_FINDINGS = 1000;
const MAX_TEXT = 300;

/** Kinds by plural, for patches (which rarely say their kind). */
const KIND_OF_RESOURCE: Record<string, string> = {
  pods: 'Pod',
  deployments: 'Deployment',
  statefulsets: 'StatefulSet',
  daemonsets: 'DaemonSet',
  replicasets: 'ReplicaSet',
  jobs: 'Job',
  cronjobs: 'CronJob',
  replicationcontrollers: 'ReplicationController',
  podtemplates: 'PodTemplate',
  roles: 'Role',
  clusterroles: 'ClusterRole',
  rolebindings: 'RoleBinding',
  clusterrolebindings: 'ClusterRoleBinding',
  secrets: 'Secret',
  validatingwebhookconfigurations: 'ValidatingWebhookConfiguration',
  mutatingwebhookconfigurations: 'MutatingWebhookConfiguration',
};

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATH: Record<string, readonly string[]> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  PodTemplate: ['template', 'spec'],
};

/** Roles whose binding is as good as owning the namespace or the cluster. */
const POWERFUL_ROLES = new Set(['cluster-admin', 'admin', 'edit', 'system:masters']);
/** Groups that mean "everyone" (or every workload). */
const BROAD_GROUPS = new Set(['system:authenticated', 'system:unauthenticated', 'system:serviceaccounts', 'system:masters']);
/** RBAC verbs that change permissions or identity. */
const ESCALATING_VERBS = new Set(['escalate', 'bind', 'impersonate']);
/** Subresources that run code or mint credentials. */
const CODE_OR_CREDENTIAL_RESOURCES = new Set(['pods/exec', 'pods/attach', 'pods/ephemeralcontainers', 'serviceaccounts/token', 'nodes/proxy']);
/** The subresources of CODE_OR_CREDENTIAL_RESOURCES, which RBAC's star-slash form ("*" then "/exec") names on every resource. */
const CODE_OR_CREDENTIAL_SUBRESOURCES = new Set([...CODE_OR_CREDENTIAL_RESOURCES].map((r) => r.slice(r.indexOf('/') + 1)));
const SECRET_READ_VERBS = new Set(['get', 'list', 'watch', '*']);
/** Resources whose creation runs a pod (as any service account of the namespace, mounting any of its secrets). */
const WORKLOAD_RESOURCES = new Set(['pods', 'deployments', 'statefulsets', 'daemonsets', 'replicasets', 'jobs', 'cronjobs', 'replicationcontrollers']);
/** Verbs that make or change a workload. */
const WORKLOAD_WRITE_VERBS = new Set(['create', 'update', 'patch', '*']);
const HOST_NAMESPACES = [
  ['hostNetwork', 'network'],
  ['hostPID', 'process'],
  ['hostIPC', 'IPC'],
] as const;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function strs(v: unknown): string[] {
  return arr(v).filter((x): x is string => typeof x === 'string');
}
function at(v: unknown, path: readonly string[]): unknown {
  let cur = v;
  for (const key of path) cur = isObj(cur) ? cur[key] : undefined;
  return cur;
}
function list(items: string[]): string {
  return items.length === 0 ? '(none)' : items.join(', ');
}
function json(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

class Findings {
  private readonly items: RiskFinding[] = [];
  private highs = 0;
  private others = 0;
  private droppedHigh = 0;
  private droppedOther = 0;
  add(level: RiskLevel, text: string): void {
    if (level === 'high' ? this.highs >= MAX_HIGH_FINDINGS : this.others >= MAX_FINDINGS) {
      if (level === 'high') this.droppedHigh++;
      else this.droppedOther++;
      return;
    }
    if (level === 'high') this.highs++;
    else this.others++;
    this.items.push({ level, text: text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text });
  }
  /** The findings in the order found; when some were left out, a high finding first saying how many. */
  done(): RiskFinding[] {
    const dropped = this.droppedHigh + this.droppedOther;
    if (dropped === 0) return this.items;
    const which = [this.droppedHigh > 0 && `${this.droppedHigh} high`, this.droppedOther > 0 && `${this.droppedOther} notice or info`].filter(Boolean).join(' and ');
    return [{ level: 'high', text: `this summary is incomplete: ${which} findings of ${this.highs + this.others + dropped} are not listed; read the whole body before approving` }, ...this.items];
  }
}

/** The summary of a parsed body (`body`) of a request for `ctx.resource`. */
export function summarizeRisk(body: unknown, ctx: RiskContext): RiskSummary {
  const f = new Findings();
  if (ctx.patch === 'json') {
    jsonPatchFindings(body, f);
    return { subject: `JSON patch of ${ctx.resource}`, patch: true, findings: f.done() };
  }
  const kindHint = KIND_OF_RESOURCE[ctx.resource];
  const subject = objectFindings(body, kindHint, f, '');
  const patch = ctx.patch !== null;
  const what = patch ? `${ctx.patch === 'apply' ? 'server-side apply' : `${ctx.patch} patch`} of ${subject}` : subject;
  if (patch) f.add('notice', 'this is a patch: the summary covers the fields it sets, not the whole object it produces');
  return { subject: what, patch, findings: f.done() };
}

/** Findings for one object (or a List); returns how it is named. */
function objectFindings(body: unknown, kindHint: string | undefined, f: Findings, prefix: string): string {
  if (!isObj(body)) {
    f.add('info', `${prefix}the body is not a JSON object; nothing to summarize`);
    return 'a body that is not an object';
  }
  const kind = str(body['kind']) ?? kindHint ?? 'object';
  const name = str(at(body, ['metadata', 'name'])) ?? str(at(body, ['metadata', 'generateName']));
  const subject = `${kind}${name !== undefined ? ` "${name}"` : ''}`;
  if (kind.endsWith('List') && Array.isArray(body['items'])) {
    body['items'].forEach((item, i) => {
      const itemKind = isObj(item) ? str(item['kind']) : undefined;
      objectFindings(item, itemKind, f, `${prefix}items[${i}] `);
    });
    return `${subject} of ${body['items'].length} items`;
  }
  const p = prefix + (prefix ? `${subject}: ` : '');
  const podPath = POD_SPEC_PATH[kind];
  if (podPath) {
    podSpecFindings(at(body, podPath), f, p);
    podAnnotationFindings(at(body, [...podPath.slice(0, -1), 'metadata']), f, p);
  }
  else if (kind === 'Role' || kind === 'ClusterRole') roleFindings(body, f, p);
  else if (kind === 'RoleBinding' || kind === 'ClusterRoleBinding') bindingFindings(body, kind, f, p);
  else if (kind === 'Secret') secretFindings(body, f, p);
  else if (kind === 'ValidatingWebhookConfiguration' || kind === 'MutatingWebhookConfiguration') webhookFindings(body, kind, f, p);
  else f.add('info', `${p}no risk rules for kind ${kind}; read the body`);
  return subject;
}

// ---------------------------------------------------------------------------------------------
// Workloads

function podSpecFindings(spec: unknown, f: Findings, p: string): void {
  if (!isObj(spec)) {
    f.add('info', `${p}no pod spec in the body`);
    return;
  }
  for (const [field, what] of HOST_NAMESPACES) {
    if (spec[field] === true) f.add('high', `${p}${field}: true (shares the node's ${what} namespace)`);
  }
  if (at(spec, ['securityContext', 'runAsUser']) === 0) f.add('high', `${p}pod runs as root (securityContext.runAsUser: 0)`);
  confinementFindings(spec['securityContext'], `${p}pod`, f);
  if (spec['shareProcessNamespace'] === true) f.add('notice', `${p}shareProcessNamespace: true (its containers see and signal each other's processes)`);
  const sa = str(spec['serviceAccountName']) ?? str(spec['serviceAccount']);
  f.add('info', `${p}service account: ${sa ?? 'default (not set)'}`);
  const automount = spec['automountServiceAccountToken'];
  if (automount === false) f.add('info', `${p}automountServiceAccountToken: false`);
  else f.add('notice', `${p}the service account token is mounted (automountServiceAccountToken: ${automount === true ? 'true' : 'not set'})`);
  if (str(spec['nodeName'])) f.add('notice', `${p}nodeName: ${str(spec['nodeName'])} (bypasses the scheduler)`);
  for (const kind of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    for (const c of arr(spec[kind])) containerFindings(c, kind, f, p);
  }
  for (const v of arr(spec['volumes'])) volumeFindings(v, f, p);
}

function containerFindings(c: unknown, kind: string, f: Findings, p: string): void {
  if (!isObj(c)) return;
  const who = `${p}${kind === 'containers' ? 'container' : kind.replace(/s$/, '')} ${str(c['name']) ?? '(unnamed)'}`;
  f.add('info', `${who}: image ${str(c['image']) ?? '(not set)'}`);
  if (c['command'] !== undefined) f.add('info', `${who}: command ${json(c['command'])}`);
  if (c['args'] !== undefined) f.add('info', `${who}: args ${json(c['args'])}`);
  const sc = c['securityContext'];
  if (at(sc, ['privileged']) === true) f.add('high', `${who} is privileged (securityContext.privileged: true)`);
  if (at(sc, ['allowPrivilegeEscalation']) === true) f.add('notice', `${who}: allowPrivilegeEscalation: true`);
  if (at(sc, ['runAsUser']) === 0) f.add('high', `${who} runs as root (securityContext.runAsUser: 0)`);
  confinementFindings(sc, who, f);
  if (at(sc, ['procMount']) === 'Unmasked') f.add('high', `${who}: procMount: Unmasked (/proc of the node not masked)`);
  const added = strs(at(sc, ['capabilities', 'add']));
  if (added.length > 0) f.add('high', `${who} adds capabilities ${list(added)}`);
  for (const port of arr(c['ports'])) {
    const hostPort = at(port, ['hostPort']);
    if (typeof hostPort === 'number') f.add('notice', `${who}: hostPort ${hostPort} (listens on the node)`);
  }
  for (const ref of arr(c['envFrom'])) {
    const secret = str(at(ref, ['secretRef', 'name']));
    if (secret) f.add('notice', `${who}: environment from secret ${secret}`);
  }
  for (const env of arr(c['env'])) {
    const secret = str(at(env, ['valueFrom', 'secretKeyRef', 'name']));
    if (secret) f.add('notice', `${who}: env ${str(at(env, ['name'])) ?? '?'} from secret ${secret}`);
  }
}

/** seccomp and AppArmor switched off, at the pod or a container's securityContext. */
function confinementFindings(sc: unknown, who: string, f: Findings): void {
  if (at(sc, ['seccompProfile', 'type']) === 'Unconfined') f.add('high', `${who}: seccompProfile Unconfined (no syscall filter)`);
  if (at(sc, ['appArmorProfile', 'type']) === 'Unconfined') f.add('high', `${who}: appArmorProfile Unconfined (no AppArmor confinement)`);
}

/** The AppArmor annotations of a pod (before appArmorProfile): `container.apparmor.security.beta.kubernetes.io/<container>: unconfined`. */
const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';

function podAnnotationFindings(meta: unknown, f: Findings, p: string): void {
  const annotations = at(meta, ['annotations']);
  if (!isObj(annotations)) return;
  for (const [k, v] of Object.entries(annotations)) {
    if (k.startsWith(APPARMOR_ANNOTATION) && v === 'unconfined') f.add('high', `${p}container ${k.slice(APPARMOR_ANNOTATION.length)}: AppArmor unconfined (annotation ${k})`);
  }
}

function volumeFindings(v: unknown, f: Findings, p: string): void {
  if (!isObj(v)) return;
  const name = `${p}volume ${str(v['name']) ?? '(unnamed)'}`;
  if (isObj(v['hostPath'])) f.add('high', `${name}: hostPath ${str(v['hostPath']['path']) ?? '(no path)'} (a directory of the node)`);
  if (isObj(v['secret'])) f.add('notice', `${name}: secret ${str(v['secret']['secretName']) ?? '(unnamed)'}`);
  for (const source of arr(at(v, ['projected', 'sources']))) {
    if (isObj(at(source, ['serviceAccountToken']))) {
      const audience = str(at(source, ['serviceAccountToken', 'audience']));
      f.add('notice', `${name}: projected service-account token${audience ? ` (audience ${audience})` : ''}`);
    }
    const secret = str(at(source, ['secret', 'name']));
    if (secret) f.add('notice', `${name}: projected secret ${secret}`);
  }
}

// ---------------------------------------------------------------------------------------------
// RBAC

function roleFindings(role: Obj, f: Findings, p: string): void {
  if (role['aggregationRule'] !== undefined) f.add('notice', `${p}aggregates other ClusterRoles: ${json(role['aggregationRule'])}`);
  arr(role['rules']).forEach((rule, i) => ruleFindings(rule, `${p}rule ${i + 1}`, f));
}

function ruleFindings(rule: unknown, who: string, f: Findings): void {
  if (!isObj(rule)) return;
  const verbs = strs(rule['verbs']);
  const groups = strs(rule['apiGroups']);
  const resources = strs(rule['resources']);
  const urls = strs(rule['nonResourceURLs']);
  const names = strs(rule['resourceNames']);
  const on = urls.length > 0 ? `non-resource URLs ${list(urls)}` : `resources ${list(resources)} in API groups ${list(groups.map((g) => (g === '' ? '""' : g)))}`;
  f.add('info', `${who}: verbs ${list(verbs)} on ${on}${names.length > 0 ? ` named ${list(names)}` : ''}`);
  const wild = [verbs.includes('*') && 'verbs', groups.includes('*') && 'apiGroups', resources.includes('*') && 'resources', urls.includes('*') && 'nonResourceURLs'].filter(Boolean);
  if (wild.length > 0) f.add('high', `${who}: wildcard in ${wild.join(', ')}`);
  const escalating = verbs.filter((v) => ESCALATING_VERBS.has(v));
  if (escalating.length > 0) f.add('high', `${who}: ${list(escalating)} (changes permissions or identity)`);
  const secrets = resources.some((r) => r === 'secrets' || r === '*');
  const reads = verbs.filter((v) => SECRET_READ_VERBS.has(v));
  if (secrets && verbs.length > 0) f.add(reads.length > 0 ? 'high' : 'notice', `${who}: access to secrets (${list(verbs)})`);
  const workloads = resources.filter((r) => WORKLOAD_RESOURCES.has(r));
  const writes = verbs.filter((v) => WORKLOAD_WRITE_VERBS.has(v));
  if (workloads.length > 0 && writes.length > 0) f.add('high', `${who}: ${list(writes)} on ${list(workloads)} (runs pods as any service account of the namespace, with its secrets)`);
  if (resources.includes('certificatesigningrequests/approval') && verbs.some((v) => v === 'update' || v === 'patch' || v === '*')) {
    f.add('high', `${who}: approves certificate signing requests (certificatesigningrequests/approval: ${list(verbs)}; mints credentials)`);
  }
  if (resources.includes('signers') && verbs.some((v) => v === 'approve' || v === 'sign' || v === '*')) f.add('high', `${who}: ${list(verbs)} on signers (mints credentials)`);
  // RBAC's `*/exec` names that subresource of every resource, `pods/exec` among them.
  const code = resources.filter((r) => CODE_OR_CREDENTIAL_RESOURCES.has(r) || (r.startsWith('*/') && CODE_OR_CREDENTIAL_SUBRESOURCES.has(r.slice(2))));
  if (code.length > 0 && verbs.some((v) => v === 'create' || v === 'get' || v === '*')) f.add('high', `${who}: ${list(code)} (runs code or mints credentials)`);
}

function bindingFindings(binding: Obj, kind: string, f: Findings, p: string): void {
  const roleKind = str(at(binding, ['roleRef', 'kind'])) ?? '?';
  const roleName = str(at(binding, ['roleRef', 'name'])) ?? '?';
  const scope = kind === 'ClusterRoleBinding' ? 'cluster-wide' : 'in its namespace';
  f.add(POWERFUL_ROLES.has(roleName) ? 'high' : 'info', `${p}binds ${roleKind} ${roleName} ${scope}`);
  for (const s of arr(binding['subjects'])) {
    if (!isObj(s)) continue;
    const sKind = str(s['kind']) ?? '?';
    const sName = str(s['name']) ?? '?';
    const ns = str(s['namespace']);
    const text = `${p}subject ${sKind} ${ns ? `${ns}/` : ''}${sName}`;
    f.add(sKind === 'Group' && BROAD_GROUPS.has(sName) ? 'high' : 'info', sKind === 'Group' && BROAD_GROUPS.has(sName) ? `${text} (a broad group)` : text);
  }
}

// ---------------------------------------------------------------------------------------------
// Secrets and webhooks

function secretFindings(secret: Obj, f: Findings, p: string): void {
  const type = str(secret['type']) ?? 'Opaque (not set)';
  f.add('info', `${p}type ${type}`);
  if (type === 'kubernetes.io/service-account-token') {
    const sa = str(at(secret, ['metadata', 'annotations', 'kubernetes.io/service-account.name'])) ?? '?';
    f.add('high', `${p}a service-account token for service account ${sa} (the cluster writes a token into it)`);
  }
  const keys = [...Object.keys(isObj(secret['data']) ? secret['data'] : {}), ...Object.keys(isObj(secret['stringData']) ? secret['stringData'] : {})];
  f.add('info', `${p}keys: ${list(keys)} (values not shown)`);
}

function webhookFindings(config: Obj, kind: string, f: Findings, p: string): void {
  const mutating = kind === 'MutatingWebhookConfiguration';
  for (const w of arr(config['webhooks'])) {
    if (!isObj(w)) continue;
    const who = `${p}webhook ${str(w['name']) ?? '(unnamed)'}`;
    if (mutating) f.add('high', `${who}: mutating (can change every object it matches)`);
    for (const rule of arr(w['rules'])) {
      const ops = strs(at(rule, ['operations']));
      const resources = strs(at(rule, ['resources']));
      const wild = ops.includes('*') || resources.includes('*') || resources.includes('*/*');
      f.add(wild ? 'notice' : 'info', `${who}: ${list(ops)} on ${list(resources)} in API groups ${list(strs(at(rule, ['apiGroups'])))}`);
    }
    const policy = str(w['failurePolicy']) ?? 'Fail (default)';
    f.add(policy === 'Ignore' ? 'notice' : 'info', `${who}: failurePolicy ${policy}${policy === 'Ignore' ? ' (requests pass when the webhook is down)' : ''}`);
    const url = str(at(w, ['clientConfig', 'url']));
    const svc = at(w, ['clientConfig', 'service']);
    if (url) f.add('high', `${who}: sends admission requests (with the objects) to ${url}`);
    else if (isObj(svc)) f.add('notice', `${who}: sends admission requests to service ${str(svc['namespace']) ?? '?'}/${str(svc['name']) ?? '?'}${svc['port'] !== undefined ? `:${json(svc['port'])}` : ''}${str(svc['path']) ?? ''}`);
  }
}

// ---------------------------------------------------------------------------------------------
// JSON patches

/** Keys that, set anywhere by a JSON patch, are worth an approver's eye (best effort). */
const RISKY_KEYS: Record<string, (v: unknown) => string | undefined> = {
  privileged: (v) => (v === true ? 'privileged: true' : undefined),
  hostNetwork: (v) => (v === true ? 'hostNetwork: true' : undefined),
  hostPID: (v) => (v === true ? 'hostPID: true' : undefined),
  hostIPC: (v) => (v === true ? 'hostIPC: true' : undefined),
  runAsUser: (v) => (v === 0 ? 'runAsUser: 0' : undefined),
  hostPath: (v) => (v !== undefined ? `hostPath ${json(v)}` : undefined),
  add: (v) => (Array.isArray(v) ? `capabilities add ${json(v)}` : undefined),
  roleRef: (v) => `roleRef ${json(v)}`,
  procMount: (v) => (v === 'Unmasked' ? 'procMount: Unmasked' : undefined),
  seccompProfile: (v) => (at(v, ['type']) === 'Unconfined' ? 'seccompProfile Unconfined' : undefined),
  appArmorProfile: (v) => (at(v, ['type']) === 'Unconfined' ? 'appArmorProfile Unconfined' : undefined),
  verbs: (v) => (strs(v).some((x) => x === '*' || ESCALATING_VERBS.has(x)) ? `verbs ${json(v)}` : undefined),
};

function jsonPatchFindings(body: unknown, f: Findings): void {
  if (!Array.isArray(body)) {
    f.add('notice', 'the JSON patch is not a list of operations');
    return;
  }
  for (const op of body) {
    if (!isObj(op)) continue;
    const path = str(op['path']) ?? '?';
    const value = op['value'];
    f.add('info', `${str(op['op']) ?? '?'} ${path}${value !== undefined ? ` = ${json(value)}` : ''}${str(op['from']) ? ` from ${str(op['from'])}` : ''}`);
    // The last path segment names the value: `/spec/hostNetwork` set to true is hostNetwork: true.
    const segments = path.split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = segments.at(-1) ?? '';
    scanRisky({ [last]: value }, `${path}`, f, 0);
    // `/.../seccompProfile/type` = Unconfined: the key alone (`type`) does not say it.
    const owner = segments.at(-2);
    if (last === 'type' && value === 'Unconfined' && (owner === 'seccompProfile' || owner === 'appArmorProfile')) f.add('high', `${path}: sets ${owner} Unconfined`);
  }
}

function scanRisky(v: unknown, where: string, f: Findings, depth: number): void {
  if (depth > 32) return;
  if (Array.isArray(v)) {
    v.forEach((x) => scanRisky(x, where, f, depth + 1));
    return;
  }
  if (!isObj(v)) return;
  for (const [k, x] of Object.entries(v)) {
    const hit = RISKY_KEYS[k]?.(x);
    if (hit) f.add('high', `${where}: sets ${hit}`);
    scanRisky(x, where, f, depth + 1);
  }
}

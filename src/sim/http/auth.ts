// What `kubectl auth can-i` and `kubectl auth whoami` ask: SelfSubjectAccessReview,
// SelfSubjectRulesReview (can-i --list) and SelfSubjectReview. The sim has one identity, the
// bearer token of its kubeconfig, bound to cluster-admin as kubeadm's admin is: every review
// answers allowed, with the reason RBAC gives.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readObjectBody } from './body.js';
import { ApiError, sendJson } from './respond.js';

/** Who the sim's token is. */
export const SIM_USER = { username: 'kube-bastion-sim-admin', groups: ['system:masters', 'system:authenticated'] } as const;

const RBAC_REASON = 'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"';

const AUTHORIZATION_V1 = '/apis/authorization.k8s.io/v1/';
const AUTHENTICATION = '/apis/authentication.k8s.io/';
/** kubectl 1.27 asks v1beta1 or v1alpha1 (then falls back on 404); 1.28+ ask v1 first. */
const SELF_SUBJECT_REVIEW_VERSIONS = ['v1', 'v1beta1', 'v1alpha1'];

export const AUTH_GROUPS = [
  { group: 'authentication.k8s.io', versions: SELF_SUBJECT_REVIEW_VERSIONS, resources: ['selfsubjectreviews'], kinds: ['SelfSubjectReview'] },
  {
    group: 'authorization.k8s.io',
    versions: ['v1'],
    resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'],
    kinds: ['SelfSubjectAccessReview', 'SelfSubjectRulesReview'],
  },
] as const;

/** True when `path` is one of the review endpoints (they take POST only). */
export function isAuthPath(path: string): boolean {
  return reviewOf(path) !== undefined;
}

type Review = { kind: 'access' | 'rules' } | { kind: 'self'; version: string };

function reviewOf(path: string): Review | undefined {
  if (path === `${AUTHORIZATION_V1}selfsubjectaccessreviews`) return { kind: 'access' };
  if (path === `${AUTHORIZATION_V1}selfsubjectrulesreviews`) return { kind: 'rules' };
  for (const version of SELF_SUBJECT_REVIEW_VERSIONS) {
    if (path === `${AUTHENTICATION}${version}/selfsubjectreviews`) return { kind: 'self', version };
  }
  return undefined;
}

export async function serveAuthReview(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const review = reviewOf(path)!;
  if (req.method !== 'POST') throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
  const body = await readObjectBody(req);
  if (typeof body !== 'object' || body === null) throw ApiError.badRequest('request body must be a JSON object');
  const obj = body as { spec?: Record<string, unknown> };
  switch (review.kind) {
    case 'access':
      return sendJson(res, 201, accessReview(obj.spec ?? {}));
    case 'rules':
      return sendJson(res, 201, rulesReview(obj.spec ?? {}));
    case 'self':
      return sendJson(res, 201, {
        kind: 'SelfSubjectReview',
        apiVersion: `authentication.k8s.io/${review.version}`,
        metadata: { creationTimestamp: null },
        status: { userInfo: { username: SIM_USER.username, groups: [...SIM_USER.groups] } },
      });
  }
}

function accessReview(spec: Record<string, unknown>): unknown {
  const resource = spec.resourceAttributes !== undefined && spec.resourceAttributes !== null;
  const nonResource = spec.nonResourceAttributes !== undefined && spec.nonResourceAttributes !== null;
  if (resource === nonResource) {
    // The API server's validation (pkg/apis/authorization/validation) words it this way.
    throw new ApiError(
      422,
      'Invalid',
      `SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified`,
      { kind: 'SelfSubjectAccessReview', group: 'authorization.k8s.io' },
    );
  }
  return {
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: { allowed: true, reason: RBAC_REASON },
  };
}

function rulesReview(spec: Record<string, unknown>): unknown {
  if (typeof spec.namespace !== 'string' || spec.namespace === '') {
    throw new ApiError(422, 'Invalid', `SelfSubjectRulesReview.authorization.k8s.io "" is invalid: spec.namespace: Required value`, {
      kind: 'SelfSubjectRulesReview',
      group: 'authorization.k8s.io',
    });
  }
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec,
    status: {
      resourceRules: [
        { verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] },
        { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
      ],
      nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
      incomplete: false,
    },
  };
}

/** Discovery documents of the two groups, as kube-apiserver lists them. */
export function authGroupDiscovery(): unknown[] {
  return AUTH_GROUPS.map((g) => ({
    name: g.group,
    versions: g.versions.map((v) => ({ groupVersion: `${g.group}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
  }));
}

/** `/apis/GROUP/VERSION`'s APIResourceList, or undefined for other paths. */
export function authResourceList(path: string): unknown {
  for (const g of AUTH_GROUPS) {
    for (const v of g.versions) {
      if (path !== `/apis/${g.group}/${v}`) continue;
      return {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: `${g.group}/${v}`,
        resources: g.resources.map((name, i) => ({ name, singularName: '', namespaced: false, kind: g.kinds[i], verbs: ['create'] })),
      };
    }
  }
  return undefined;
}

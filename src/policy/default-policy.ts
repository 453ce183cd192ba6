// The built-in policy, used when `serve` gets no --policy FILE. Kept as text (not as an object) so it
// goes through exactly the same validation and hashing as an operator's file, and so an operator can
// print it, copy it and edit it. The reasoning behind each rule is in docs/policy.md.

export const BUILT_IN_POLICY_ORIGIN = 'built-in';

export const DEFAULT_POLICY_YAML = `# kube-bastion default policy. First matching rule wins; requests no rule matches get \`default\`.
# Reference: docs/policy.md
apiVersion: kube-bastion/v1
kind: Policy
description: Reads pass (except secrets); risky operations need approval; dangerous ones are denied.
default: deny   # anything the rules below do not classify

rules:
  # --- denied outright ------------------------------------------------------------------------
  # Impersonation headers never travel upstream. Discovery with them passes (stripped), so kubectl
  # gets as far as the real request and prints this rule's refusal instead of a discovery error.
  - name: deny-impersonation
    match: { impersonation: true, resources: ["*"] }
    action: deny
    reason: impersonation headers are not accepted from agents; the bastion acts only as the agent's own identity

  - name: deny-node-proxy
    match: { resources: ["nodes/proxy"] }
    action: deny
    reason: nodes/proxy reaches the kubelet API directly (exec into any pod on the node, unrecorded)

  # --- need an approval -----------------------------------------------------------------------
  - name: pod-streams-need-approval
    match: { streams: [exec, attach, portforward] }
    action: approval
    reason: interactive access to a pod needs an approval

  - name: ephemeral-containers-need-approval
    match: { resources: ["pods/ephemeralcontainers"] }
    action: approval
    reason: adding a debug container to a running pod needs an approval

  - name: proxy-needs-approval
    match: { resources: ["pods/proxy", "services/proxy"] }
    action: approval
    reason: proxying into a pod or service needs an approval

  - name: namespace-delete-needs-approval
    match: { verbs: [delete, deletecollection], resources: [namespaces] }
    action: approval
    reason: deleting a namespace deletes everything in it

  - name: secrets-need-approval
    match: { resources: [secrets] }
    action: approval
    reason: reading or changing secrets needs an approval

  - name: system-namespace-writes-need-approval
    description: >-
      kube-system, kube-public and kube-node-lease hold what the cluster trusts: who is an admin
      (EKS aws-auth maps identities to system:masters), DNS (coredns), the front proxy's CA
      (extension-apiserver-authentication), leader leases; a write there is never plain data
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources: ["*"]
      namespaces: [kube-system, kube-public, kube-node-lease]
    action: approval
    reason: writes in a system namespace can change cluster identity, DNS or trust, and need an approval

  # --- pass -----------------------------------------------------------------------------------
  - name: reads
    match: { verbs: [get, list, watch], resources: ["*"] }
    action: allow

  - name: self-reviews
    description: kubectl auth can-i / whoami ask the server about the caller; nothing is changed
    match:
      verbs: [create]
      resources:
        - selfsubjectaccessreviews.authorization.k8s.io
        - selfsubjectrulesreviews.authorization.k8s.io
        - selfsubjectreviews.authentication.k8s.io
    action: allow

  - name: configmap-and-event-writes
    description: plain data in a namespace; cannot run code, mint credentials or change permissions
    match:
      verbs: [create, update, patch, delete, deletecollection]
      apiGroups: [""]
      resources: [configmaps, events]
      namespaces: ["*"]
    action: allow

  - name: discovery
    description: what kubectl reads before every command
    match:
      verbs: [get]
      nonResourcePaths:
        - /api
        - /api/*
        - /apis
        - /apis/*
        - /version
        - /openapi/*
        - /healthz
        - /healthz/*
        - /livez
        - /livez/*
        - /readyz
        - /readyz/*
    action: allow

  # --- every other write ----------------------------------------------------------------------
  - name: other-writes-need-approval
    description: workloads, RBAC, service accounts and tokens, services, cluster-scoped objects...
    match: { verbs: [create, update, patch, delete, deletecollection], resources: ["*"] }
    action: approval
    reason: this change needs an approval
`;

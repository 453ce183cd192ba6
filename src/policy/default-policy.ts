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

  # --- a read-only probe that must not wait -----------------------------------------------------
  - name: cp-directory-probe
    description: >-
      kubectl cp into a pod first runs \`test -d DEST\` (kubectl 1.33 gives up on it after 10 s), then
      the tar that copies; the probe only asks whether a path is a directory, so the tar is the one
      decision. Exactly three arguments, no shell: the path is one argument whatever it contains.
      Recorded like any session.
    match: { commands: [["test", "-d", "*"]] }
    action: allow

  # --- need an approval -----------------------------------------------------------------------
  - name: pod-streams-need-approval
    match: { streams: [exec, attach, portforward] }
    action: approval
    reason: interactive access to a pod needs an approval

  - name: ephemeral-containers-need-approval
    match: { resources: ["pods/ephemeralcontainers"] }
    action: approval
    reason: adding a debug container to a running pod needs an approval

  - name: remote-access-needs-approval
    description: proxy, and the console-like subresources of other APIs (KubeVirt's console and vnc)
    match: { resources: ["*/proxy", "*/exec", "*/attach", "*/portforward", "*/console", "*/vnc"] }
    action: approval
    reason: proxying into a pod or service, or a console of any kind, needs an approval

  - name: secrets-need-approval
    match: { resources: [secrets] }
    action: approval
    reason: reading or changing secrets needs an approval

  - name: system-namespace-writes-need-approval
    description: >-
      kube-system, kube-public and kube-node-lease hold what the cluster trusts: who is an admin
      (EKS aws-auth maps identities to system:masters), DNS (coredns), the front proxy's CA
      (extension-apiserver-authentication), cluster-info, leader and node leases; a write there is
      never plain data
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources: ["*"]
      namespaces: [kube-system, kube-public, kube-node-lease]
    action: approval
    reason: writes in a system namespace can change cluster identity, DNS or trust, and need an approval

  - name: trust-configmap-writes-need-approval
    description: >-
      configmaps that carry identity, DNS or trust wherever they live: kube-root-ca.crt (in every
      namespace: the CA pods use to trust the API server), aws-auth, coredns, cluster-info... "" is
      deletecollection, which would take kube-root-ca.crt along
    match:
      verbs: [update, patch, delete, deletecollection]
      resources: [configmaps]
      names:
        - kube-root-ca.crt
        - aws-auth
        - coredns
        - coredns-custom
        - extension-apiserver-authentication
        - cluster-info
        - kube-proxy
        - kubeadm-config
        - kubelet-config
        - ""
    action: approval
    reason: this configmap carries identity, DNS or trust, and a change to it needs an approval

  - name: rbac-writes-need-approval
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources: [roles, rolebindings, clusterroles, clusterrolebindings]
    action: approval
    reason: RBAC changes grant or remove permissions and need an approval

  - name: identity-writes-need-approval
    description: service accounts and their tokens, certificate requests and their approval, trust bundles, token reviews
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources:
        - serviceaccounts
        - serviceaccounts/*
        - certificatesigningrequests
        - certificatesigningrequests/*
        - clustertrustbundles
        - tokenreviews
    action: approval
    reason: this creates or changes an identity or a credential, and needs an approval

  - name: admission-and-api-writes-need-approval
    description: admission webhooks and policies, CRDs (conversion webhooks), aggregated API services
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources:
        - "*.admissionregistration.k8s.io"
        - customresourcedefinitions
        - customresourcedefinitions/*
        - apiservices
        - apiservices/*
    action: approval
    reason: this changes what the API server trusts, admits or serves, and needs an approval

  - name: node-and-storage-writes-need-approval
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources:
        - nodes
        - nodes/*
        - persistentvolumes
        - persistentvolumes/*
        - storageclasses
        - csidrivers
        - volumeattachments
        - volumeattachments/*
        - runtimeclasses
    action: approval
    reason: nodes, volumes and runtimes reach the node itself (a hostPath volume mounts its disk), and a change needs an approval

  - name: workload-writes-need-approval
    description: pods and every controller that makes pods run code, with the pod's service account and mounts
    match:
      verbs: [create, update, patch, delete, deletecollection]
      resources:
        - pods
        - pods/*
        - podtemplates
        - replicationcontrollers
        - replicationcontrollers/*
        - deployments
        - deployments/*
        - replicasets
        - replicasets/*
        - statefulsets
        - statefulsets/*
        - daemonsets
        - daemonsets/*
        - controllerrevisions
        - jobs
        - jobs/*
        - cronjobs
        - cronjobs/*
    action: approval
    reason: creating or changing a workload runs code, and needs an approval

  - name: namespace-delete-needs-approval
    match: { verbs: [delete, deletecollection], resources: [namespaces] }
    action: approval
    reason: deleting a namespace deletes everything in it

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
    description: >-
      data in a namespace that no rule above names; cannot start a process, issue a credential or
      change RBAC (see docs/policy.md for what that does and does not cover)
    match:
      verbs: [create, update, patch, delete]
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
    description: services and endpoints (rerouting traffic), namespaces, network policies, access reviews, custom resources...
    match: { verbs: [create, update, patch, delete, deletecollection], resources: ["*"] }
    action: approval
    reason: this change needs an approval
`;

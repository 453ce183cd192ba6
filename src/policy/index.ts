// The policy engine's public surface: load and validate a policy, hold the active version, decide.
export { BUILT_IN_POLICY_ORIGIN, DEFAULT_POLICY_YAML } from './default-policy.js';
export { decideFor, describeRequest, evaluate, evaluateWithRule, type Evaluation, type EvaluationContext } from './evaluate.js';
export { formatIssues, issueHeadline, type PolicyIssue } from './issues.js';
export { builtInPolicy, loadPolicy, parsePolicy, policyHash, type PolicySource } from './load.js';
export {
  POLICY_API_VERSION,
  POLICY_KIND,
  type AutoApprove,
  type LoadedPolicy,
  type PolicyDocument,
  type PolicyMatch,
  type PolicyRule,
  type RecordingSettings,
  DEFAULT_RECORDING,
} from './schema.js';
export { ruleSource } from './rule-source.js';
export { validatePolicyText, type ValidationResult } from './validate.js';
export { PolicyHolder, type PolicyHolderEvents, type PolicyHolderOptions, type ReloadResult } from './watcher.js';

// One request + one policy version -> one decision. First matching rule wins; otherwise `default`.
// Pure and synchronous: no I/O, no clock, so every decision can be replayed from the stored policy.
import type { KubeRequest, PolicyDecision, Principal, ResourceRequest, StreamOperation } from '../model/request.js';
import { compileArgvPattern, nameGlobMatches, parseResourcePattern, pathPatternMatches, resourcePatternMatches, type ResourcePattern } from './patterns.js';
import { STREAM_OPERATIONS } from '../model/vocabulary.js';
import { type LoadedPolicy, type PolicyDocument, type PolicyMatch, type PolicyRule } from './schema.js';

export interface EvaluationContext {
  /** The authenticated agent. */
  principal: Principal;
  /** The request carried Impersonate-* headers (detected by the Kubernetes endpoint, which strips them). */
  impersonation: boolean;
}

export interface Evaluation {
  decision: PolicyDecision;
  /** The rule that decided, or undefined when the default action applied (e.g. to read `autoApprove`). */
  rule: PolicyRule | undefined;
}

export function evaluate(policy: LoadedPolicy, req: KubeRequest, ctx: EvaluationContext): PolicyDecision {
  return evaluateWithRule(policy, req, ctx).decision;
}

export function evaluateWithRule(policy: LoadedPolicy, req: KubeRequest, ctx: EvaluationContext): Evaluation {
  const stream = req.kind === 'resource' ? streamOf(req) : undefined;
  for (const compiled of compile(policy.document)) {
    if (!matches(compiled, req, ctx, stream)) continue;
    const { rule } = compiled;
    return {
      decision: { action: rule.action, rule: rule.name, policyHash: policy.hash, reason: explain(req, rule.action, rule.name, rule.reason) },
      rule,
    };
  }
  const action = policy.document.default;
  return {
    decision: { action, rule: 'default', policyHash: policy.hash, reason: explain(req, action, 'default', undefined) },
    rule: undefined,
  };
}

/**
 * The stream operation of a request. The parser sets `stream`; a pods/exec, pods/attach or
 * pods/portforward request without it is still treated as that stream, so no rule can be dodged.
 */
function streamOf(req: ResourceRequest): StreamOperation | undefined {
  if (req.stream !== undefined) return req.stream;
  if (req.apiGroup === '' && req.resource === 'pods' && (STREAM_OPERATIONS as readonly string[]).includes(req.subresource)) {
    return req.subresource as StreamOperation;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

interface CompiledRule {
  readonly rule: PolicyRule;
  readonly match: PolicyMatch;
  readonly appliesTo: 'resource' | 'nonResource' | 'any';
  readonly resources: readonly ResourcePattern[] | undefined;
  readonly commands: readonly ((argv: readonly string[]) => boolean)[] | undefined;
}

const compiledCache = new WeakMap<PolicyDocument, readonly CompiledRule[]>();

function compile(document: PolicyDocument): readonly CompiledRule[] {
  let compiled = compiledCache.get(document);
  if (compiled === undefined) {
    compiled = document.rules.map((rule) => {
      const m = rule.match;
      const resourceOnly = m.resources !== undefined || m.apiGroups !== undefined || m.namespaces !== undefined || m.names !== undefined || m.streams !== undefined || m.commands !== undefined;
      const resources = m.resources?.map((text) => {
        const p = parseResourcePattern(text);
        // Validated documents never get here with a bad pattern; fail closed if one does.
        if (typeof p === 'string') throw new Error(`policy rule ${rule.name}: ${p}`);
        return p;
      });
      return {
        rule,
        match: m,
        appliesTo: m.nonResourcePaths !== undefined ? 'nonResource' : resourceOnly ? 'resource' : 'any',
        resources,
        commands: m.commands?.map(compileArgvPattern),
      } satisfies CompiledRule;
    });
    compiledCache.set(document, compiled);
  }
  return compiled;
}

function matches(c: CompiledRule, req: KubeRequest, ctx: EvaluationContext, stream: StreamOperation | undefined): boolean {
  const m = c.match;
  if (c.appliesTo !== 'any' && c.appliesTo !== req.kind) return false;
  if (m.impersonation !== undefined && m.impersonation !== ctx.impersonation) return false;
  if (m.verbs !== undefined && !m.verbs.includes('*') && !m.verbs.includes(req.verb)) return false;
  if (m.agents !== undefined && !m.agents.some((p) => nameGlobMatches(p, ctx.principal.name) || nameGlobMatches(p, ctx.principal.id))) return false;
  if (req.kind === 'nonResource') {
    return m.nonResourcePaths === undefined || m.nonResourcePaths.some((p) => pathPatternMatches(p, req.path));
  }
  if (m.apiGroups !== undefined && !m.apiGroups.includes('*') && !m.apiGroups.includes(req.apiGroup)) return false;
  if (c.resources !== undefined && !c.resources.some((p) => resourcePatternMatches(p, req.apiGroup, req.resource, req.subresource))) return false;
  if (m.namespaces !== undefined && !m.namespaces.some((p) => nameGlobMatches(p, req.namespace))) return false;
  if (m.names !== undefined && !m.names.some((p) => nameGlobMatches(p, req.name))) return false;
  if (m.streams !== undefined && (stream === undefined || !m.streams.includes(stream))) return false;
  // The argv the endpoint runs is exactly these repeated `command` parameters (the parser refuses
  // queries Go would read differently), so what matches here is what runs.
  if (c.commands !== undefined && (stream !== 'exec' || !c.commands.some((matches) => matches(req.query.getAll('command'))))) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------

/** e.g. `exec pods/exec "web-0" in namespace "shop"`, `get /metrics`. */
export function describeRequest(req: KubeRequest): string {
  if (req.kind === 'nonResource') return `${req.verb} ${req.path}`;
  const stream = streamOf(req);
  const ref = `${req.resource}${req.apiGroup === '' ? '' : `.${req.apiGroup}`}${req.subresource === '' ? '' : `/${req.subresource}`}`;
  const name = req.name === '' ? '' : ` "${req.name}"`;
  const ns = req.namespace === '' ? '' : ` in namespace "${req.namespace}"`;
  return `${stream ?? req.verb} ${ref}${name}${ns}`;
}

function explain(req: KubeRequest, action: PolicyDecision['action'], rule: string, reason: string | undefined): string {
  const what = describeRequest(req);
  const by = rule === 'default' ? `no policy rule matches; default: ${action}` : `policy rule "${rule}"`;
  const why = reason === undefined ? '' : `: ${reason}`;
  switch (action) {
    case 'allow':
      return `${what} is allowed (${by})`;
    case 'approval':
      return `${what} needs approval${why} (${by})`;
    case 'deny':
      return `${what} is denied${why} (${by})`;
  }
}

/**
 * The decision an endpoint acts on, from the active policy version: clients see the rule's own
 * words as the reason (the evaluator's longer explanation stays in the logs), and an approval rule
 * carries its auto-approval when it has one.
 */
export function decideFor(policy: LoadedPolicy, req: KubeRequest, ctx: EvaluationContext): PolicyDecision {
  const { decision, rule } = evaluateWithRule(policy, req, ctx);
  const autoApprove = decision.action === 'approval' ? rule?.autoApprove : undefined;
  return { ...decision, reason: rule?.reason ?? '', ...(autoApprove ? { autoApprove } : {}) };
}

// The bastion's Prometheus metrics on prom-client, in a registry of its own (one per bastion, so
// tests can run several in one process), with prom-client's default process metrics.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What the control endpoint serves at /metrics. */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

export function createBastionMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    exposition: { contentType: registry.contentType, render: () => registry.metrics() } satisfies MetricsExposition,
    requests: new Counter({
      name: 'kube_bastion_requests_total',
      help: 'Requests on the Kubernetes endpoint by policy decision, verb and HTTP status code.',
      labelNames: ['code', 'decision', 'verb'] as const,
      registers,
    }),
    requestDuration: new Histogram({
      name: 'kube_bastion_request_duration_seconds',
      help: 'Time from request to the end of the response, by decision.',
      labelNames: ['decision'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    upstreamErrors: new Counter({ name: 'kube_bastion_upstream_errors_total', help: 'Requests that failed to reach the upstream API server.', registers }),
    inflight: new Gauge({ name: 'kube_bastion_inflight_requests', help: 'Requests being served now (watches and log follows included).', registers }),
    auditAggregated: new Counter({
      name: 'kube_bastion_audit_aggregated_requests_total',
      help: 'Unauthenticated or malformed requests over their address\'s audit rate: counted in an aggregate row instead of their own (failure: unauthenticated, malformed).',
      labelNames: ['failure'] as const,
      registers,
    }),
    auditAggregateRows: new Counter({ name: 'kube_bastion_audit_aggregate_rows_total', help: 'Aggregate audit rows written (one per address, failure class and interval).', registers }),
    policyReloads: new Counter({ name: 'kube_bastion_policy_reloads_total', help: 'Policy loads by result (ok, error).', labelNames: ['result'] as const, registers }),
  };
}
export type BastionMetrics = ReturnType<typeof createBastionMetrics>;

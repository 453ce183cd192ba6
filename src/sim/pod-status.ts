// Builds a Pod's status from its running containers, the way kubelet reports it.
import type { KubeObject } from './store.js';
import type { Container } from './runtime/container.js';

function iso(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function podStatus(pod: KubeObject, containers: Container[], podIndex: number): Record<string, unknown> {
  const created = pod.metadata.creationTimestamp ?? iso(new Date());
  const allReady = containers.every((c) => c.running);
  const condition = (type: string, ok: boolean) => ({ type, status: ok ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: created });
  return {
    phase: 'Running',
    conditions: [condition('Initialized', true), condition('Ready', allReady), condition('ContainersReady', allReady), condition('PodScheduled', true)],
    hostIP: '10.0.0.10',
    podIP: `10.244.0.${10 + (podIndex % 240)}`,
    podIPs: [{ ip: `10.244.0.${10 + (podIndex % 240)}` }],
    startTime: created,
    qosClass: 'BestEffort',
    containerStatuses: containers.map((c) => {
      const state = c.state;
      return {
        name: c.spec.name,
        ready: state.running,
        started: state.running,
        restartCount: state.restartCount,
        image: ((pod.spec as { containers?: Array<{ name: string; image?: string }> }).containers ?? []).find((s) => s.name === c.spec.name)?.image ?? 'unknown',
        imageID: '',
        containerID: `sim://${pod.metadata.uid ?? ''}/${c.spec.name}`,
        state: state.running ? { running: { startedAt: iso(state.startedAt) } } : { waiting: { reason: 'CrashLoopBackOff' } },
      };
    }),
  };
}

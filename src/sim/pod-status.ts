// Builds a Pod's status from its running containers, the way kubelet reports it.
import type { KubeObject } from './store.js';
import type { Container } from './runtime/container.js';

function iso(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

type SpecEntry = { name: string; image?: string };

function containerStatus(c: Container, specs: SpecEntry[], uid: string): Record<string, unknown> {
  const state = c.state;
  const ended = c.terminated;
  const current = state.running
    ? { running: { startedAt: iso(state.startedAt) } }
    : ended && c.spec.restart === false
      ? { terminated: { exitCode: ended.code, reason: ended.code === 0 ? 'Completed' : 'Error', startedAt: iso(state.startedAt), finishedAt: iso(ended.at) } }
      : { waiting: { reason: 'CrashLoopBackOff' } };
  return {
    name: c.spec.name,
    ready: state.running,
    started: state.running,
    restartCount: state.restartCount,
    image: specs.find((s) => s.name === c.spec.name)?.image ?? 'unknown',
    imageID: '',
    containerID: `sim://${uid}/${c.spec.name}`,
    state: current,
  };
}

export function podStatus(pod: KubeObject, containers: Container[], podIndex: number, ephemeral: Container[] = []): Record<string, unknown> {
  const created = pod.metadata.creationTimestamp ?? iso(new Date());
  const spec = (pod.spec ?? {}) as { containers?: SpecEntry[]; ephemeralContainers?: SpecEntry[] };
  const uid = pod.metadata.uid ?? '';
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
    containerStatuses: containers.map((c) => containerStatus(c, spec.containers ?? [], uid)),
    ...(ephemeral.length > 0
      ? // Ephemeral containers are never ready (they have no probes) and never restart.
        { ephemeralContainerStatuses: ephemeral.map((c) => ({ ...containerStatus(c, spec.ephemeralContainers ?? [], uid), ready: false })) }
      : {}),
  };
}

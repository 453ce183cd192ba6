// Runs the processes behind simulated pods: one working directory per pod, one Container per
// spec entry, and the exec/attach sessions that must end when the pod is deleted.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Container, type ContainerSpec } from './container.js';
import type { KubeObject } from '../store.js';

interface PodContainerSpec {
  name: string;
  command?: string[];
  args?: string[];
  tty?: boolean;
  stdin?: boolean;
  env?: Array<{ name: string; value?: string }>;
}

interface RunningPod {
  dir: string;
  containers: Map<string, Container>;
  sessions: Set<() => void>;
}

/** What a container runs when its spec names no command: an idle process, like a pause image. */
const IDLE_ARGV = ['sleep', 'infinity'];

export function containerSpecs(pod: KubeObject): PodContainerSpec[] {
  const spec = pod.spec as { containers?: PodContainerSpec[] } | undefined;
  return spec?.containers ?? [];
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export class PodRuntime {
  private readonly pods = new Map<string, RunningPod>();

  constructor(
    private readonly root: string,
    private readonly onContainerChange: (namespace: string, name: string) => void,
  ) {}

  podDir(namespace: string, name: string): string {
    return join(this.root, 'pods', namespace, name);
  }

  /** Environment of every process in the container, exec sessions included. */
  env(namespace: string, podName: string, container: string, extra: Record<string, string> = {}): Record<string, string> {
    const pod = this.pods.get(podKey(namespace, podName));
    return {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: pod?.dir ?? this.podDir(namespace, podName),
      HOSTNAME: podName,
      LANG: 'C.UTF-8',
      POD_NAME: podName,
      POD_NAMESPACE: namespace,
      CONTAINER_NAME: container,
      ...extra,
    };
  }

  async start(pod: KubeObject): Promise<void> {
    const namespace = pod.metadata.namespace ?? 'default';
    const name = pod.metadata.name;
    const dir = this.podDir(namespace, name);
    await mkdir(dir, { recursive: true });
    const running: RunningPod = { dir, containers: new Map(), sessions: new Set() };
    this.pods.set(podKey(namespace, name), running);
    for (const c of containerSpecs(pod)) {
      const argv = c.command?.length ? [...c.command, ...(c.args ?? [])] : c.args?.length ? c.args : IDLE_ARGV;
      const extraEnv = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
      const spec: ContainerSpec = { name: c.name, argv, tty: c.tty === true, stdin: c.stdin === true };
      const container = new Container(spec, {
        cwd: dir,
        env: this.env(namespace, name, c.name, { ...(spec.tty ? { TERM: 'xterm-256color' } : {}), ...extraEnv }),
      });
      container.on('state', () => this.onContainerChange(namespace, name));
      running.containers.set(c.name, container);
      await container.start();
    }
  }

  container(namespace: string, podName: string, container: string): Container | undefined {
    return this.pods.get(podKey(namespace, podName))?.containers.get(container);
  }

  containers(namespace: string, podName: string): Container[] {
    return [...(this.pods.get(podKey(namespace, podName))?.containers.values() ?? [])];
  }

  /** Registers a live exec/attach session; `end` is called if the pod goes away. */
  trackSession(namespace: string, podName: string, end: () => void): () => void {
    const pod = this.pods.get(podKey(namespace, podName));
    if (!pod) {
      end();
      return () => {};
    }
    pod.sessions.add(end);
    return () => pod.sessions.delete(end);
  }

  async stop(namespace: string, name: string): Promise<void> {
    const pod = this.pods.get(podKey(namespace, name));
    if (!pod) return;
    this.pods.delete(podKey(namespace, name));
    for (const end of pod.sessions) end();
    for (const c of pod.containers.values()) c.stop();
    await rm(pod.dir, { recursive: true, force: true });
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.pods.keys()].map((key) => {
      const [ns, name] = key.split('/') as [string, string];
      return this.stop(ns, name);
    }));
  }
}

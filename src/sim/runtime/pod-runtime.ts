// Runs the processes behind simulated pods: one working directory per pod, one Container per
// spec entry (ephemeral containers included), and the exec/attach sessions and port-forward
// connections that must end when the pod is deleted.
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Container, type ContainerSpec } from './container.js';
import type { RunAs } from './process.js';
import type { KubeObject } from '../store.js';

export interface PodContainerSpec {
  name: string;
  command?: string[];
  args?: string[];
  tty?: boolean;
  stdin?: boolean;
  env?: Array<{ name: string; value?: string }>;
  image?: string;
}

interface RunningPod {
  dir: string;
  /** The pod's own loopback address: its processes listen there and port-forward connects there. */
  address: string;
  containers: Map<string, Container>;
  ephemeral: Map<string, Container>;
  sessions: Set<() => void>;
}

/** What a container runs when its spec names no command: an idle process, like a pause image. */
const IDLE_ARGV = ['sleep', 'infinity'];
/** What an ephemeral container runs without a command (kubectl debug's images default to a shell). */
const SHELL_ARGV = ['sh'];

export function containerSpecs(pod: KubeObject): PodContainerSpec[] {
  const spec = pod.spec as { containers?: PodContainerSpec[] } | undefined;
  return spec?.containers ?? [];
}

export function ephemeralContainerSpecs(pod: KubeObject): PodContainerSpec[] {
  const spec = pod.spec as { ephemeralContainers?: PodContainerSpec[] } | undefined;
  return spec?.ephemeralContainers ?? [];
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/**
 * A fresh loopback address for a pod, at random in 127.2.0.1-127.251.255.254: every pod gets its
 * own, so two pods (of this sim, or of another sim on the same machine) can listen on the same
 * port, as they could in their own network namespaces. 127.0/16 and 127.1/16 are left alone.
 */
export function podLoopbackAddress(used: ReadonlySet<string>): string {
  for (;;) {
    const [a, b, c] = randomBytes(3);
    const address = `127.${2 + (a! % 250)}.${b!}.${1 + (c! % 254)}`;
    if (!used.has(address)) return address;
  }
}

export interface PodRuntimeOptions {
  root: string;
  /** Every pod process runs as this user (and the pod directory belongs to it). */
  runAs?: RunAs;
  onContainerChange: (namespace: string, name: string) => void;
}

export class PodRuntime {
  private readonly pods = new Map<string, RunningPod>();
  private readonly root: string;

  constructor(private readonly options: PodRuntimeOptions) {
    this.root = options.root;
  }

  get runAs(): RunAs | undefined {
    return this.options.runAs;
  }

  podDir(namespace: string, name: string): string {
    return join(this.root, 'pods', namespace, name);
  }

  /** The pod's loopback address, or undefined when it is not running. */
  podAddress(namespace: string, name: string): string | undefined {
    return this.pods.get(podKey(namespace, name))?.address;
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
      ...(pod ? { SIM_POD_ADDRESS: pod.address } : {}),
      ...extra,
    };
  }

  async start(pod: KubeObject): Promise<void> {
    const namespace = pod.metadata.namespace ?? 'default';
    const name = pod.metadata.name;
    const dir = await this.makePodDir(namespace, name);
    const running: RunningPod = {
      dir,
      address: podLoopbackAddress(new Set([...this.pods.values()].map((p) => p.address))),
      containers: new Map(),
      ephemeral: new Map(),
      sessions: new Set(),
    };
    this.pods.set(podKey(namespace, name), running);
    for (const c of containerSpecs(pod)) {
      const container = this.newContainer(namespace, name, c, IDLE_ARGV, true);
      running.containers.set(c.name, container);
      await container.start();
    }
  }

  /** Starts the ephemeral containers of `pod` that are not running yet (they never restart). */
  async startEphemeral(pod: KubeObject): Promise<void> {
    const namespace = pod.metadata.namespace ?? 'default';
    const running = this.pods.get(podKey(namespace, pod.metadata.name));
    if (!running) return;
    for (const c of ephemeralContainerSpecs(pod)) {
      if (running.ephemeral.has(c.name)) continue;
      const container = this.newContainer(namespace, pod.metadata.name, c, SHELL_ARGV, false);
      running.ephemeral.set(c.name, container);
      // A command that does not exist leaves the container terminated, as a failed start does.
      await container.start().catch(() => undefined);
    }
  }

  private newContainer(namespace: string, podName: string, c: PodContainerSpec, defaultArgv: string[], restart: boolean): Container {
    const argv = c.command?.length ? [...c.command, ...(c.args ?? [])] : c.args?.length ? c.args : defaultArgv;
    const extraEnv = Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
    const spec: ContainerSpec = { name: c.name, argv, tty: c.tty === true, stdin: c.stdin === true, restart };
    const container = new Container(spec, {
      cwd: this.podDir(namespace, podName),
      env: this.env(namespace, podName, c.name, { ...(spec.tty ? { TERM: 'xterm-256color' } : {}), ...extraEnv }),
      ...(this.options.runAs ? { user: this.options.runAs } : {}),
    });
    container.on('state', () => this.options.onContainerChange(namespace, podName));
    return container;
  }

  /**
   * The pod's directory, owned by the pod user when there is one. The directories above it are
   * left traversable (0711) but not listable, so a pod can reach its own directory only.
   */
  private async makePodDir(namespace: string, name: string): Promise<string> {
    const dir = this.podDir(namespace, name);
    await mkdir(dir, { recursive: true });
    const user = this.options.runAs;
    if (user) {
      for (const up of [this.root, join(this.root, 'pods'), join(this.root, 'pods', namespace)]) await chmod(up, 0o711);
      await chown(dir, user.uid, user.gid);
      await chmod(dir, 0o700);
    }
    return dir;
  }

  /** A regular or ephemeral container by name. */
  container(namespace: string, podName: string, container: string): Container | undefined {
    const pod = this.pods.get(podKey(namespace, podName));
    return pod?.containers.get(container) ?? pod?.ephemeral.get(container);
  }

  /** The regular containers, in spec order. */
  containers(namespace: string, podName: string): Container[] {
    return [...(this.pods.get(podKey(namespace, podName))?.containers.values() ?? [])];
  }

  ephemeralContainers(namespace: string, podName: string): Container[] {
    return [...(this.pods.get(podKey(namespace, podName))?.ephemeral.values() ?? [])];
  }

  /** Registers a live exec/attach session or port-forward; `end` is called if the pod goes away. */
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
    for (const c of [...pod.containers.values(), ...pod.ephemeral.values()]) c.stop();
    await rm(pod.dir, { recursive: true, force: true });
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.pods.keys()].map((key) => {
        const [ns, name] = key.split('/') as [string, string];
        return this.stop(ns, name);
      }),
    );
  }
}

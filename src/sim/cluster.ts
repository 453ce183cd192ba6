// The simulated cluster: an HTTPS server that looks like kube-apiserver to kubectl and client
// libraries, backed by an in-memory object store and pods that are real processes.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { boundUrl, listen } from '../net/listen.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ObjectStore, type KubeObject } from './store.js';
import { seedObjects } from './seed.js';
import { PodRuntime } from './runtime/pod-runtime.js';
import type { RunAs } from './runtime/process.js';
import { podUser } from './runtime/user.js';
import { authGroupDiscovery, authResourceList, isAuthPath, serveAuthReview } from './http/auth.js';
import { serveEphemeralContainers } from './http/ephemeral.js';
import { servePortForward } from './portforward/upgrade.js';
import { podStatus } from './pod-status.js';
import { RequestLog } from './request-log.js';
import type { ResourceDef } from './resources.js';
import { RestHandler } from './http/rest.js';
import { routeCoreV1 } from './http/route.js';
import { apiGroupList, apiVersions, coreV1Resources, SIM_VERSION } from './http/discovery.js';
import { ApiError, sendApiError, sendJson } from './http/respond.js';
import { serveLogs } from './http/logs.js';
import { handleStreamUpgrade } from './http/streams.js';
import { createLoopbackServingMaterial, type ServingMaterial } from '../tls/ca.js';
import { writeStatusToSocket } from '../transport/http-response.js';
import { apiStatus } from '../protocol/status.js';

export interface SimOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Bearer token clients must present; random when omitted. */
  token?: string;
  /** Where pod working directories live; a temp dir (removed on stop) when omitted. */
  workDir?: string;
  /** Append every request as a JSON line to this file. */
  requestLogFile?: string;
  tls?: ServingMaterial;
  /**
   * Who runs pod processes: default `nobody` when the sim runs as root, else the sim's own user;
   * 'self' keeps the sim's user even as root.
   */
  runAs?: RunAs | 'self';
  /** Called for errors that are not a client's fault (logged by the CLI). */
  onError?: (err: unknown) => void;
  /**
   * Highest remote-command protocol version for exec/attach: 4 behaves like an API server older
   * than 1.30 (v5 refused, the kubelet's v4 over WebSocket and SPDY). Default 5.
   */
  maxRemoteCommandVersion?: 4 | 5;
}

const UNAUTHORIZED = apiStatus(401, 'Unauthorized', 'Unauthorized');

export class SimCluster {
  readonly store = new ObjectStore();
  readonly requests: RequestLog;
  private readonly rest: RestHandler;
  private runtime!: PodRuntime;
  private server!: https.Server;
  private tls!: ServingMaterial;
  private workDir!: string;
  private ownsWorkDir = false;
  private podIndex = new Map<string, number>();
  private readonly tokenBytes: Buffer;
  readonly token: string;

  constructor(private readonly options: SimOptions = {}) {
    this.token = options.token ?? randomBytes(24).toString('base64url');
    this.tokenBytes = Buffer.from(this.token);
    this.requests = new RequestLog(options.requestLogFile);
    this.rest = new RestHandler(this.store, {
      prepareCreate: (resource, obj) => this.prepareCreate(resource, obj),
      afterCreate: (resource, obj) => this.afterCreate(resource, obj),
      afterDelete: (resource, obj) => this.afterDelete(resource, obj),
    });
  }

  get url(): string {
    return boundUrl(this.server, 'https');
  }

  get caPem(): string {
    return this.tls.ca.cert;
  }

  async start(): Promise<void> {
    this.tls = this.options.tls ?? (await createLoopbackServingMaterial('kube-bastion simulated cluster CA'));
    if (this.options.workDir) this.workDir = this.options.workDir;
    else {
      this.workDir = await mkdtemp(join(tmpdir(), 'kube-bastion-sim-'));
      this.ownsWorkDir = true;
    }
    const runAs = podUser(this.options.runAs);
    this.runtime = new PodRuntime({ root: this.workDir, ...(runAs ? { runAs } : {}), onContainerChange: (ns, name) => this.refreshPodStatus(ns, name) });
    for (const { resource, object } of seedObjects()) {
      const def = { name: resource } as ResourceDef;
      this.prepareCreate(def, object);
      const created = this.store.create(resource, object)!;
      await this.afterCreate(def, created);
    }
    this.server = https.createServer({ cert: this.tls.serving.cert, key: this.tls.serving.key });
    this.server.on('request', (req, res) => {
      this.onRequest(req, res).catch((err) => this.internalError(res, err));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      this.onUpgrade(req, socket, head).catch((err) => {
        this.options.onError?.(err);
        socket.destroy();
      });
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
    await listen(this.server, this.options.host ?? '127.0.0.1', this.options.port ?? 0);
  }

  async stop(): Promise<void> {
    await this.runtime?.stopAll();
    if (this.server) {
      this.server.closeAllConnections();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
    if (this.ownsWorkDir) await rm(this.workDir, { recursive: true, force: true });
  }

  private authenticated(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) return false;
    const given = Buffer.from(header.slice('Bearer '.length).trim());
    return given.length === this.tokenBytes.length && timingSafeEqual(given, this.tokenBytes);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests.record(req);
    const url = new URL(req.url ?? '/', 'https://sim.invalid');
    if (req.method === 'GET' && ['/healthz', '/livez', '/readyz'].includes(url.pathname)) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      return;
    }
    if (!this.authenticated(req)) {
      sendJson(res, 401, UNAUTHORIZED);
      return;
    }
    try {
      await this.route(req, res, url);
    } catch (err) {
      if (err instanceof ApiError) sendApiError(res, err);
      else throw err;
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname;
    if (req.method === 'GET') {
      if (path === '/version') return sendJson(res, 200, SIM_VERSION);
      if (path === '/api') return sendJson(res, 200, apiVersions(`${req.socket.localAddress}:${req.socket.localPort}`));
      if (path === '/apis') return sendJson(res, 200, apiGroupList(authGroupDiscovery()));
      if (path === '/api/v1') return sendJson(res, 200, coreV1Resources());
      const groupResources = authResourceList(path);
      if (groupResources !== undefined) return sendJson(res, 200, groupResources);
    }
    if (isAuthPath(path)) return serveAuthReview(req, res, path);
    const route = routeCoreV1(path);
    if (!route) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (route.resource.name === 'pods' && route.subresource !== undefined) {
      if (route.subresource === 'log' && req.method === 'GET') return this.logs(req, res, route.namespace!, route.name!, url.searchParams);
      if (route.subresource === 'exec' || route.subresource === 'attach' || route.subresource === 'portforward') {
        throw ApiError.badRequest('Upgrade request required');
      }
      if (route.subresource === 'ephemeralcontainers') {
        return serveEphemeralContainers(req, res, route.namespace!, route.name!, {
          store: this.store,
          afterChange: (pod) => this.startEphemeral(pod),
        });
      }
    }
    return this.rest.handle(req, res, route, url.searchParams);
  }

  private logs(req: IncomingMessage, res: ServerResponse, namespace: string, name: string, params: URLSearchParams): void {
    const pod = this.store.get('pods', namespace, name);
    if (!pod) throw ApiError.notFound('pods', name);
    const containers = this.runtime.containers(namespace, name);
    const wanted = params.get('container') ?? '';
    // Ephemeral containers have logs too (kubectl debug falls back to them when attach fails).
    const container =
      wanted === '' && containers.length === 1
        ? containers[0]
        : [...containers, ...this.runtime.ephemeralContainers(namespace, name)].find((c) => c.spec.name === wanted);
    if (!container) {
      if (wanted === '') {
        throw ApiError.badRequest(`a container name must be specified for pod ${name}, choose one of: [${containers.map((c) => c.spec.name).join(' ')}]`);
      }
      throw ApiError.badRequest(`container ${wanted} is not valid for pod ${name}`);
    }
    serveLogs(req, res, container, params);
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.requests.record(req);
    if (!this.authenticated(req)) {
      writeStatusToSocket(socket, UNAUTHORIZED);
      return;
    }
    const url = new URL(req.url ?? '/', 'https://sim.invalid');
    const route = routeCoreV1(url.pathname);
    if (!route || route.resource.name !== 'pods' || route.namespace === undefined || route.name === undefined) {
      writeStatusToSocket(socket, apiStatus(404, 'NotFound', 'the server could not find the requested resource'));
      return;
    }
    if (route.subresource === 'portforward') return this.portForward(req, socket, head, route.namespace, route.name, url.searchParams);
    await handleStreamUpgrade(
      {
        store: this.store,
        runtime: this.runtime,
        onError: (err) => this.options.onError?.(err),
        ...(this.options.maxRemoteCommandVersion ? { maxRemoteCommandVersion: this.options.maxRemoteCommandVersion } : {}),
      },
      req,
      socket,
      head,
      route,
      url.searchParams,
    );
  }

  private async portForward(req: IncomingMessage, socket: Duplex, head: Buffer, namespace: string, name: string, params: URLSearchParams): Promise<void> {
    const pod = this.store.get('pods', namespace, name);
    const address = this.runtime.podAddress(namespace, name);
    if (!pod || address === undefined) {
      writeStatusToSocket(socket, apiStatus(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' }));
      return;
    }
    await servePortForward(req, socket, head, params, {
      namespace,
      name,
      uid: pod.metadata.uid ?? '',
      address,
      track: (end) => this.runtime.trackSession(namespace, name, end),
    });
  }

  /** Runs the ephemeral containers just added to `pod`, then reports them in its status. */
  private async startEphemeral(pod: KubeObject): Promise<void> {
    await this.runtime.startEphemeral(pod);
    this.refreshPodStatus(pod.metadata.namespace ?? 'default', pod.metadata.name);
  }

  private internalError(res: ServerResponse, err: unknown): void {
    this.options.onError?.(err);
    if (!res.headersSent) sendJson(res, 500, apiStatus(500, 'InternalError', 'Internal error occurred'));
    else res.destroy();
  }

  private prepareCreate(resource: ResourceDef, obj: KubeObject): void {
    if (resource.name === 'pods') obj.status = { phase: 'Pending' };
    if (resource.name === 'namespaces') obj.status = { phase: 'Active' };
    if (resource.name === 'secrets') obj.type ??= 'Opaque';
  }

  private async afterCreate(resource: ResourceDef, obj: KubeObject): Promise<void> {
    if (resource.name !== 'pods') return;
    const ns = obj.metadata.namespace ?? 'default';
    this.podIndex.set(`${ns}/${obj.metadata.name}`, this.podIndex.size);
    await this.runtime.start(obj);
    this.refreshPodStatus(ns, obj.metadata.name);
  }

  private async afterDelete(resource: ResourceDef, obj: KubeObject): Promise<void> {
    if (resource.name === 'pods') {
      await this.runtime.stop(obj.metadata.namespace ?? 'default', obj.metadata.name);
      return;
    }
    if (resource.name === 'namespaces') {
      // Deleting a namespace deletes everything in it.
      for (const kind of ['pods', 'secrets', 'configmaps']) {
        for (const item of this.store.list(kind, obj.metadata.name)) {
          const gone = this.store.delete(kind, obj.metadata.name, item.metadata.name);
          if (gone && kind === 'pods') await this.runtime.stop(obj.metadata.name, item.metadata.name);
        }
      }
    }
  }

  private refreshPodStatus(namespace: string, name: string): void {
    const pod = this.store.get('pods', namespace, name);
    if (!pod) return;
    pod.status = podStatus(
      pod,
      this.runtime.containers(namespace, name),
      this.podIndex.get(`${namespace}/${name}`) ?? 0,
      this.runtime.ephemeralContainers(namespace, name),
    );
    this.store.update('pods', pod);
  }
}

// GET / LIST / WATCH / CREATE / DELETE for the served core/v1 resources.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { KubeObject, ObjectStore } from '../store.js';
import type { ResourceDef } from '../resources.js';
import { readObjectBody } from './body.js';
import { ApiError, sendJson } from './respond.js';
import { fieldSelector, labelSelector } from './selectors.js';
import { toTable, wantsTable, type IncludeObject } from './table.js';
import { serveWatch } from './watch.js';
import { apiServerBool } from '../../protocol/query.js';
import type { SimRoute } from './route.js';

export interface RestHooks {
  /** Called before a created object is stored; may fill in status. */
  prepareCreate(resource: ResourceDef, obj: KubeObject): void;
  afterCreate(resource: ResourceDef, obj: KubeObject): Promise<void>;
  afterDelete(resource: ResourceDef, obj: KubeObject): Promise<void>;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export class RestHandler {
  constructor(
    private readonly store: ObjectStore,
    private readonly hooks: RestHooks,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, route: SimRoute, params: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    if (route.subresource !== undefined) throw new ApiError(404, 'NotFound', `the server could not find the requested resource`);
    if (method === 'GET' && route.name !== undefined) return this.get(res, route);
    if (method === 'GET') return this.list(req, res, route, params);
    if (method === 'POST' && route.name === undefined) return this.create(req, res, route, params);
    if (method === 'DELETE' && route.name !== undefined) return this.delete(res, route, params);
    if (method === 'DELETE') return this.deleteCollection(res, route, params);
    throw new ApiError(405, 'MethodNotAllowed', `the simulated cluster does not support ${method} on ${route.resource.name}`);
  }

  private requireNamespace(namespace: string | undefined): void {
    if (namespace !== undefined && !this.store.get('namespaces', undefined, namespace)) {
      throw ApiError.notFound('namespaces', namespace);
    }
  }

  private get(res: ServerResponse, route: SimRoute): void {
    const obj = this.store.get(route.resource.name, route.namespace, route.name!);
    if (!obj) throw ApiError.notFound(route.resource.name, route.name!);
    sendJson(res, 200, obj);
  }

  private list(req: IncomingMessage, res: ServerResponse, route: SimRoute, params: URLSearchParams): void {
    const matchesLabels = labelSelector(params.get('labelSelector'));
    const matchesFields = fieldSelector(params.get('fieldSelector'));
    const matches = (o: KubeObject) => matchesLabels(o) && matchesFields(o);
    const table = wantsTable(req.headers.accept) ? { include: (params.get('includeObject') ?? 'Metadata') as IncludeObject } : undefined;
    // Read as the API server reads it: `watch=True`, `t`, `yes` are watches too.
    if (apiServerBool(params.getAll('watch'))) {
      const timeout = Number(params.get('timeoutSeconds'));
      serveWatch(this.store, req, res, {
        resource: route.resource.name,
        namespace: route.namespace,
        matches,
        resourceVersion: params.get('resourceVersion') ?? '',
        ...(Number.isFinite(timeout) && timeout > 0 ? { timeoutSeconds: timeout } : {}),
        ...(table ? { table } : {}),
      });
      return;
    }
    const items = this.store.list(route.resource.name, route.namespace).filter(matches);
    const rv = String(this.store.currentResourceVersion);
    if (table) {
      sendJson(res, 200, toTable(route.resource.name, items, table.include, rv));
      return;
    }
    sendJson(res, 200, { kind: `${route.resource.kind}List`, apiVersion: 'v1', metadata: { resourceVersion: rv }, items });
  }

  private async create(req: IncomingMessage, res: ServerResponse, route: SimRoute, params: URLSearchParams): Promise<void> {
    const body = await readObjectBody(req);
    if (typeof body !== 'object' || body === null) throw ApiError.badRequest('request body must be a JSON object');
    const obj = body as KubeObject;
    if (obj.kind !== route.resource.kind) {
      throw ApiError.badRequest(`the body kind "${String(obj.kind)}" does not match the resource ${route.resource.name} (${route.resource.kind})`);
    }
    obj.apiVersion = 'v1';
    obj.metadata = typeof obj.metadata === 'object' && obj.metadata !== null ? obj.metadata : ({} as KubeObject['metadata']);
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = obj.metadata.generateName + randomBytes(3).toString('hex').slice(0, 5);
    const name = obj.metadata.name;
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new ApiError(422, 'Invalid', `${route.resource.kind} "${String(name ?? '')}" is invalid: metadata.name: Invalid value: must be a lowercase RFC 1123 subdomain`);
    }
    if (route.resource.namespaced) {
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== route.namespace) {
        throw ApiError.badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = route.namespace;
      this.requireNamespace(route.namespace);
    } else {
      delete obj.metadata.namespace;
    }
    delete obj.metadata.resourceVersion;
    delete obj.metadata.uid;
    delete obj.metadata.creationTimestamp;
    this.hooks.prepareCreate(route.resource, obj);
    if (params.get('dryRun') === 'All') {
      sendJson(res, 201, obj);
      return;
    }
    const created = this.store.create(route.resource.name, obj);
    if (!created) {
      throw new ApiError(409, 'AlreadyExists', `${route.resource.name} "${name}" already exists`, { name, kind: route.resource.name });
    }
    await this.hooks.afterCreate(route.resource, created);
    sendJson(res, 201, this.store.get(route.resource.name, route.namespace, name) ?? created);
  }

  private async delete(res: ServerResponse, route: SimRoute, params: URLSearchParams): Promise<void> {
    const existing = this.store.get(route.resource.name, route.namespace, route.name!);
    if (!existing) throw ApiError.notFound(route.resource.name, route.name!);
    if (params.get('dryRun') === 'All') {
      sendJson(res, 200, existing);
      return;
    }
    const deleted = this.store.delete(route.resource.name, route.namespace, route.name!)!;
    await this.hooks.afterDelete(route.resource, deleted);
    // Pods and namespaces come back as the object (graceful deletion); others as a Success Status.
    if (route.resource.name === 'pods' || route.resource.name === 'namespaces') {
      sendJson(res, 200, deleted);
      return;
    }
    sendJson(res, 200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name: deleted.metadata.name, kind: route.resource.name, uid: deleted.metadata.uid },
    });
  }

  private async deleteCollection(res: ServerResponse, route: SimRoute, params: URLSearchParams): Promise<void> {
    const matchesLabels = labelSelector(params.get('labelSelector'));
    const matchesFields = fieldSelector(params.get('fieldSelector'));
    const victims = this.store.list(route.resource.name, route.namespace).filter((o) => matchesLabels(o) && matchesFields(o));
    const deleted: KubeObject[] = [];
    for (const v of victims) {
      const d = this.store.delete(route.resource.name, v.metadata.namespace, v.metadata.name);
      if (d) {
        await this.hooks.afterDelete(route.resource, d);
        deleted.push(d);
      }
    }
    sendJson(res, 200, { kind: `${route.resource.kind}List`, apiVersion: 'v1', metadata: { resourceVersion: String(this.store.currentResourceVersion) }, items: deleted });
  }
}

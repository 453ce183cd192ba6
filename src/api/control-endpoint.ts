// The control endpoint: JSON API under /v1 for approvers, reviewers, admins and scripts, the web
// UI, /healthz and /metrics, served by the express app of app.ts over http or https. (The
// Kubernetes endpoint is a separate node:https server: src/endpoint.)
import http from 'node:http';
import https from 'node:https';
import { boundUrl, listen } from '../net/listen.js';
import { createControlApp, type ControlDeps } from './app.js';
import type { MountedRoute } from './mount.js';

export type { ControlDeps } from './app.js';

export interface ControlEndpointOptions {
  host: string;
  port: number;
  tls?: { cert: string; key: string };
}

export class ControlEndpoint {
  private readonly server: http.Server | https.Server;
  /** Every mounted route (API and web UI), for the tests that hold them against the OpenAPI document. */
  readonly routes: readonly MountedRoute[];

  constructor(
    deps: ControlDeps,
    private readonly opts: ControlEndpointOptions,
  ) {
    const { app, routes } = createControlApp(deps);
    this.routes = routes;
    this.server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, app) : http.createServer(app);
  }

  get url(): string {
    return boundUrl(this.server, this.opts.tls ? 'https' : 'http');
  }

  listen(): Promise<void> {
    return listen(this.server, this.opts.host, this.opts.port);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

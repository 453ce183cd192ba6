// A tiny method+path router: patterns like `/v1/agents/:name/revoke`.
import type { IncomingMessage, ServerResponse } from 'node:http';

export type Handler = (ctx: { req: IncomingMessage; res: ServerResponse; params: Record<string, string>; query: URLSearchParams }) => Promise<void>;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  /** The route table, for the docs and the API description test. */
  list(): Array<{ method: string; pattern: string }> {
    return this.routes.map((r) => ({ method: r.method, pattern: `/${r.parts.join('/')}` }));
  }

  /** undefined: no path matched; 'method': the path matched but not the method. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | 'method' | undefined {
    const segments = path.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.routes) {
      if (route.parts.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const ok = route.parts.every((p, i) => {
        const seg = segments[i]!;
        if (p.startsWith(':')) {
          try {
            params[p.slice(1)] = decodeURIComponent(seg);
          } catch {
            return false;
          }
          return true;
        }
        return p === seg;
      });
      if (!ok) continue;
      pathMatched = true;
      if (route.method === method) return { handler: route.handler, params };
    }
    return pathMatched ? 'method' : undefined;
  }
}

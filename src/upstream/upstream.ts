// The real API server the bastion forwards to, and the credentials it uses there. Loaded with
// @kubernetes/client-node so every kubeconfig form works (CA data, client certs, tokens, exec plugins).
import https from 'node:https';
import type { SecureContext } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';
import { sharedSecureContext } from './executor/tls-context.js';

export interface UpstreamTarget {
  /** e.g. https://10.0.0.1:6443 (no trailing slash) */
  readonly server: string;
  /** A description for logs: the kubeconfig path and context, or "embedded simulated cluster". */
  readonly description: string;
  /**
   * TLS options and credential headers for one request. Called per request, so rotating
   * credentials (exec plugins, expiring tokens) stay fresh; static ones are built once. A new
   * object (and `headers` object) per call: the caller completes it for its request.
   */
  requestOptions(): Promise<https.RequestOptions>;
}

class KubeConfigUpstream implements UpstreamTarget {
  readonly server: string;
  private agent: https.Agent | undefined;
  /**
   * The options of a user whose credentials cannot change while the bastion runs (a token or
   * client certificate in the kubeconfig, no exec plugin or auth provider): built on first use.
   * Rebuilding them per request (CA decoded, files read, authenticators asked) was a measured
   * share of a REST GET. The TLS settings were frozen in the agent at first use anyway.
   */
  private fixed: https.RequestOptions | undefined;
  private readonly rotates: boolean;

  constructor(
    private readonly kc: KubeConfig,
    readonly description: string,
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster?.server) throw new BastionError(ErrorCode.CONFIG_INVALID, `${description}: the current context names no cluster server`);
    if (!cluster.server.startsWith('https://')) {
      throw new BastionError(ErrorCode.CONFIG_INVALID, `${description}: upstream server ${cluster.server} is not https://; the bastion only speaks TLS upstream`);
    }
    this.server = cluster.server.replace(/\/+$/, '');
    const user = kc.getCurrentUser();
    this.rotates = user?.exec !== undefined || user?.authProvider !== undefined;
  }

  async requestOptions(): Promise<https.RequestOptions> {
    if (this.rotates) return this.build();
    this.fixed ??= await this.build();
    // A copy: callers add their own fields and headers.
    return { ...this.fixed, headers: { ...this.fixed.headers } };
  }

  private async build(): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    // One keep-alive agent for REST; its TLS settings come from the kubeconfig. Its connections
    // share one SecureContext (see tls-context.ts): each new one (64 at once for 64 concurrent
    // requests) otherwise parsed the same PEMs again.
    const material = {
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.cert ? { cert: opts.cert } : {}),
      ...(opts.key ? { key: opts.key } : {}),
    };
    this.agent ??= new https.Agent({
      keepAlive: true,
      maxSockets: 256,
      ...material,
      ...contextFor(material),
      ...(opts.servername ? { servername: opts.servername } : {}),
      rejectUnauthorized: opts.rejectUnauthorized !== false,
    });
    return { ...opts, agent: this.agent };
  }
}

/** The shared context, or nothing when the material is unusable (each connection then fails on it as before). */
function contextFor(material: Record<string, unknown>): { secureContext?: SecureContext } {
  try {
    return { secureContext: sharedSecureContext(material) };
  } catch {
    return {};
  }
}

export function upstreamFromKubeconfigFile(path: string, context?: string): UpstreamTarget {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(path);
  } catch (err) {
    throw new BastionError(ErrorCode.CONFIG_INVALID, `--upstream-kubeconfig ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
  if (context !== undefined) {
    if (!kc.getContexts().some((c) => c.name === context)) {
      throw new BastionError(ErrorCode.CONFIG_INVALID, `--upstream-context ${context}: no such context in ${path} (have: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
    }
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentContext()) throw new BastionError(ErrorCode.CONFIG_INVALID, `--upstream-kubeconfig ${path}: no current-context; pass --upstream-context`);
  return new KubeConfigUpstream(kc, `${path} (context ${kc.getCurrentContext()})`);
}

/** An upstream given directly (the embedded simulated cluster). */
export function upstreamFromCredentials(server: string, caPem: string, token: string, description: string): UpstreamTarget {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'upstream', server, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'upstream', token }],
    contexts: [{ name: 'upstream', cluster: 'upstream', user: 'upstream' }],
    currentContext: 'upstream',
  });
  return new KubeConfigUpstream(kc, description);
}

/**
 * The upstream request options, or UPSTREAM_UNAVAILABLE when its credentials cannot be obtained
 * (an exec plugin or a token file failing): answered and audited like an unreachable upstream.
 */
export async function upstreamRequestOptions(upstream: UpstreamTarget): Promise<https.RequestOptions> {
  try {
    return await upstream.requestOptions();
  } catch (err) {
    if (isBastionError(err)) throw err;
    throw new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `could not obtain upstream credentials: ${(err as Error)?.message ?? String(err)}`, undefined, { cause: err });
  }
}

/** The upstream API server could not be reached (network, TLS, credentials): one wording for every caller. */
/**
 * A request that failed because the kept-alive connection it was sent on had just been closed by
 * the server (idle), before any answer: the server never read it. Node marks a request sent on a
 * reused connection `reusedSocket` for exactly this. Callers send a safe request once more.
 */
export function droppedReusedConnection(reusedSocket: boolean | undefined, err: NodeJS.ErrnoException): boolean {
  return reusedSocket === true && (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'socket hang up');
}

export function upstreamUnreachable(cause: Error): BastionError {
  return new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `kube-bastion could not reach the upstream API server: ${cause.message}`, undefined, { cause });
}

// The real API server the bastion forwards to, and the credentials it uses there. Loaded with
// @kubernetes/client-node so every kubeconfig form works (CA data, client certs, tokens, exec plugins).
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { BastionError, ErrorCode, isBastionError } from '../errors/index.js';

export interface UpstreamTarget {
  /** e.g. https://10.0.0.1:6443 (no trailing slash) */
  readonly server: string;
  /** A description for logs: the kubeconfig path and context, or "embedded simulated cluster". */
  readonly description: string;
  /**
   * TLS options and credential headers for one request. Called per request, so rotating
   * credentials (exec plugins, expiring tokens) stay fresh.
   */
  requestOptions(): Promise<https.RequestOptions>;
}

class KubeConfigUpstream implements UpstreamTarget {
  readonly server: string;
  private agent: https.Agent | undefined;

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
  }

  async requestOptions(): Promise<https.RequestOptions> {
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    // One keep-alive agent for REST; its TLS settings come from the kubeconfig.
    this.agent ??= new https.Agent({
      keepAlive: true,
      maxSockets: 256,
      ...(opts.ca ? { ca: opts.ca } : {}),
      ...(opts.cert ? { cert: opts.cert } : {}),
      ...(opts.key ? { key: opts.key } : {}),
      ...(opts.servername ? { servername: opts.servername } : {}),
      rejectUnauthorized: opts.rejectUnauthorized !== false,
    });
    return { ...opts, agent: this.agent };
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
export function upstreamUnreachable(cause: Error): BastionError {
  return new BastionError(ErrorCode.UPSTREAM_UNAVAILABLE, `kube-bastion could not reach the upstream API server: ${cause.message}`, undefined, { cause });
}

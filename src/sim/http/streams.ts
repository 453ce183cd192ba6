// exec and attach on the simulated cluster: validate like kube-apiserver, then accept the
// upgrade (SPDY or WebSocket) and hand the session to the pod runtime.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isBastionError } from '../../errors/index.js';
import { effectiveStreamOptions, parseRemoteCommandQuery } from '../../protocol/options.js';
import { apiStatus } from '../../protocol/status.js';
import { ProtocolName } from '../../protocol/constants.js';
import { acceptRemoteCommand, upgradeKind, type AcceptedProtocols } from '../../transport/accept.js';
import { negotiateSubprotocol } from '../../transport/websocket/subprotocols.js';
import { writeStatusToSocket } from '../../transport/http-response.js';
import type { ObjectStore } from '../store.js';
import { containerSpecs, ephemeralContainerSpecs, type PodRuntime } from '../runtime/pod-runtime.js';
import { runAttach, runExec } from '../runtime/sessions.js';
import { ApiError } from './respond.js';
import type { SimRoute } from './route.js';

export interface StreamContext {
  store: ObjectStore;
  runtime: PodRuntime;
  onError(err: unknown): void;
  /**
   * 4: streaming as through an API server older than 1.30 (no v5 translator): the request reaches
   * the kubelet, which speaks v4 and older over both transports. Default 5.
   */
  maxRemoteCommandVersion?: 4 | 5;
}

/** The kubelet's own lists (its WebSocket handler and the CRI streaming server's SPDY defaults). */
const KUBELET_PROTOCOLS: AcceptedProtocols = {
  websocket: [ProtocolName.v4, ProtocolName.base64v4, ProtocolName.v1, ProtocolName.base64v1],
  spdy: [ProtocolName.v4, ProtocolName.v3, ProtocolName.v2, ProtocolName.v1],
};

/**
 * A kubelet's WebSocket handshake (golang.org/x/net/websocket) refuses an offer it cannot serve
 * with a bare 403, no Status: what an old API server passes back for a v5-only offer.
 */
function refusedByKubelet(req: IncomingMessage, socket: Duplex): boolean {
  if (upgradeKind(req) !== 'websocket') return false;
  if (negotiateSubprotocol(req.headersDistinct['sec-websocket-protocol'], KUBELET_PROTOCOLS.websocket).ok) return false;
  socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  return true;
}

/** Resolves the container name the API server would use, or throws the API server's error. */
function resolveContainer(podName: string, names: string[], ephemeral: string[], requested: string): string {
  if (requested === '') {
    if (names.length === 1) return names[0]!;
    const more = ephemeral.length > 0 ? ` or one of the ephemeral containers: [${ephemeral.join(' ')}]` : '';
    throw ApiError.badRequest(`a container name must be specified for pod ${podName}, choose one of: [${names.join(' ')}]${more}`);
  }
  if (!names.includes(requested) && !ephemeral.includes(requested)) throw ApiError.badRequest(`container ${requested} is not valid for pod ${podName}`);
  return requested;
}

export async function handleStreamUpgrade(
  ctx: StreamContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  route: SimRoute,
  params: URLSearchParams,
): Promise<void> {
  const kind = route.subresource;
  const namespace = route.namespace!;
  const podName = route.name!;
  const query = parseRemoteCommandQuery(params);
  let containerName: string;
  try {
    if (kind !== 'exec' && kind !== 'attach') throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    const pod = ctx.store.get('pods', namespace, podName);
    if (!pod) throw ApiError.notFound('pods', podName);
    const names = (specs: { name: string }[]) => specs.map((c) => c.name);
    containerName = resolveContainer(podName, names(containerSpecs(pod)), names(ephemeralContainerSpecs(pod)), query.container);
    if (kind === 'exec' && query.command.length === 0) throw ApiError.badRequest('you must specify at least one command for the container');
    if (!query.stdin && !query.stdout && !query.stderr) throw ApiError.badRequest('you must specify at least 1 of stdin, stdout, stderr');
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    writeStatusToSocket(socket, apiStatus(err.code, err.reason, err.message, err.details));
    return;
  }

  const kubelet = ctx.maxRemoteCommandVersion === 4;
  if (kubelet && refusedByKubelet(req, socket)) return;
  let streams;
  try {
    streams = await acceptRemoteCommand(req, socket, head, effectiveStreamOptions(query), undefined, kubelet ? KUBELET_PROTOCOLS : {});
  } catch (err) {
    if (!isBastionError(err)) throw err;
    writeStatusToSocket(socket, err.toStatus());
    return;
  }
  const track = (end: () => void) => ctx.runtime.trackSession(namespace, podName, end);
  if (kind === 'exec') {
    await runExec(
      streams,
      {
        argv: query.command,
        cwd: ctx.runtime.podDir(namespace, podName),
        env: ctx.runtime.env(namespace, podName, containerName, query.tty ? { TERM: 'xterm-256color' } : {}),
        ...(ctx.runtime.runAs ? { user: ctx.runtime.runAs } : {}),
      },
      track,
    );
    return;
  }
  const container = ctx.runtime.container(namespace, podName, containerName);
  if (!container) {
    await streams.finish(apiStatus(500, 'InternalError', `container ${containerName} is not running`));
    return;
  }
  await runAttach(streams, container, track);
}

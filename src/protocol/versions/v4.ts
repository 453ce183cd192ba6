import { ProtocolName } from '../constants.js';
import { decodeStatus, encodeStatus } from '../status.js';
import type { ChannelProtocol } from './types.js';

/** v4.channel.k8s.io: v3 with a metav1.Status JSON on the error stream (exit codes as data). */
export const v4: ChannelProtocol = {
  name: ProtocolName.v4,
  version: 4,
  supportsResize: true,
  supportsStreamClose: false,
  encodeError: encodeStatus,
  decodeError: decodeStatus,
};

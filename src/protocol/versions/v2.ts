import { ProtocolName } from '../constants.js';
import { decodeTextError, encodeTextError } from './text-error.js';
import type { ChannelProtocol } from './types.js';

/** v2.channel.k8s.io: v1 with the error stream always created first and read to EOF. */
export const v2: ChannelProtocol = {
  name: ProtocolName.v2,
  version: 2,
  supportsResize: false,
  supportsStreamClose: false,
  encodeError: encodeTextError,
  decodeError: decodeTextError,
};

import { ProtocolName } from '../constants.js';
import { decodeTextError, encodeTextError } from './text-error.js';
import type { ChannelProtocol } from './types.js';

/** v3.channel.k8s.io: v2 plus a resize stream when a TTY is used. */
export const v3: ChannelProtocol = {
  name: ProtocolName.v3,
  version: 3,
  supportsResize: true,
  supportsStreamClose: false,
  encodeError: encodeTextError,
  decodeError: decodeTextError,
};

import { ProtocolName } from '../constants.js';
import { decodeTextError, encodeTextError } from './text-error.js';
import type { ChannelProtocol } from './types.js';

/** channel.k8s.io: stdin/stdout/stderr plus a text error stream. */
export const v1: ChannelProtocol = {
  name: ProtocolName.v1,
  version: 1,
  supportsResize: false,
  supportsStreamClose: false,
  encodeError: encodeTextError,
  decodeError: decodeTextError,
};

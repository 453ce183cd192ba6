import { ProtocolName } from '../constants.js';
import { v4 } from './v4.js';
import type { ChannelProtocol } from './types.js';

/** v5.channel.k8s.io: v4 plus the CLOSE signal, so a client can half-close stdin. */
export const v5: ChannelProtocol = {
  ...v4,
  name: ProtocolName.v5,
  version: 5,
  supportsStreamClose: true,
};

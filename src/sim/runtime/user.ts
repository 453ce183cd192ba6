// Which user runs pod processes. Pods run whatever an approved exec or pod spec asks, on this
// machine: started as root, the sim runs them as the unprivileged `nobody` instead.
import { readFileSync } from 'node:fs';
import type { RunAs } from './process.js';

/** nobody/nogroup on Debian and most Linux distributions. */
const FALLBACK: RunAs = { uid: 65534, gid: 65534 };

/** `nobody` from /etc/passwd (the well-known ids when it is missing). */
export function nobodyUser(passwd = '/etc/passwd'): RunAs {
  try {
    for (const line of readFileSync(passwd, 'utf8').split('\n')) {
      const [name, , uid, gid] = line.split(':');
      if (name === 'nobody' && /^\d+$/.test(uid ?? '') && /^\d+$/.test(gid ?? '')) return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // no passwd file: fall through
  }
  return FALLBACK;
}

/**
 * The pod user: as asked; else `nobody` when the sim runs as root (uid 0), else none (the sim's
 * own unprivileged user, which cannot switch to another).
 */
export function podUser(requested: RunAs | 'self' | undefined): RunAs | undefined {
  if (requested === 'self') return undefined;
  if (requested) return requested;
  return process.getuid?.() === 0 ? nobodyUser() : undefined;
}

// Descriptors this process holds, read from /proc (in-process bastions and recorders run in it).
import { readdirSync, readlinkSync } from 'node:fs';

/** How many of this process's descriptors are open on `path`. */
export function fdsOn(path: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

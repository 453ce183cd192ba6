// Unpacks an evidence archive into a directory: every entry must sit under one top folder
// (`evidence-.../`), which is stripped; only files and directories, no path escapes, no file twice.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TarFormatError } from '../tar/header.js';
import { readTar } from './tar.js';

export interface UnpackResult {
  /** The archive's top folder name. */
  name: string;
  files: number;
  bytes: number;
}

export async function unpackEvidenceTar(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, dir: string): Promise<UnpackResult> {
  let top: string | undefined;
  let files = 0;
  let bytes = 0;
  const strip = (name: string): string | undefined => {
    const slash = name.indexOf('/');
    const head = slash === -1 ? name : name.slice(0, slash);
    if (top === undefined) top = head;
    if (head !== top) throw new TarFormatError(`archive entry ${JSON.stringify(name)} is not under ${top}/`);
    return slash === -1 ? undefined : name.slice(slash + 1);
  };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let current: FileHandle | undefined;
  try {
    await readTar(source, {
      directory: async (h) => {
        const rel = strip(h.name);
        if (rel !== undefined) await mkdir(join(dir, ...rel.split('/')), { recursive: true, mode: 0o700 });
      },
      file: async (h) => {
        const rel = strip(h.name);
        if (rel === undefined) throw new TarFormatError(`archive entry ${JSON.stringify(h.name)} is a file where the top folder should be`);
        const target = join(dir, ...rel.split('/'));
        await mkdir(dirname(target), { recursive: true, mode: 0o700 });
        let fh: FileHandle;
        try {
          fh = await open(target, 'wx', 0o600);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new TarFormatError(`archive holds ${rel} twice`);
          throw err;
        }
        files++;
        current = fh;
        return {
          write: async (chunk) => {
            bytes += chunk.length;
            await fh.write(chunk);
          },
          end: async () => {
            current = undefined;
            await fh.close();
          },
        };
      },
    });
  } finally {
    await current?.close().catch(() => undefined);
  }
  if (top === undefined) throw new TarFormatError('the archive is empty');
  return { name: top, files, bytes };
}

// A reader that goes away (`kube-bastion verify DIR | head -n 1`, `npm start | tee` ended by Ctrl-C)
// closes our stdout or stderr. Node then emits EPIPE as an 'error' on the stream, which kills the
// process when nobody listens. The bastion must keep serving and a command must end as it would
// have: later writes are dropped, nothing else changes.

const GONE = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'ECONNRESET']);

let installed = false;

export function tolerateClosedStdio(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): void {
  if (installed) return;
  installed = true;
  for (const stream of streams) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      // Anything else on stdio is unexpected: keep the default (crash with the error).
      if (!GONE.has(err.code ?? '')) throw err;
    });
  }
}

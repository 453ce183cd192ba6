// When any recording's asynchronous write or fsync in this process last completed (epoch ms): the
// sign that the disk is answering. A recording's write still queued behind others (a thousand
// sessions ending at once share libuv's few threads, and each end writes its last batch and fsyncs
// through AppendFile, not through a BatchWriter) is not a hung disk while this moves
// (BatchWriter.drain).
let lastAt = 0;

export function diskProgressed(): void {
  lastAt = Date.now();
}

export function lastDiskProgressAt(): number {
  return lastAt;
}

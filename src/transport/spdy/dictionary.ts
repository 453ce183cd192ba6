// The fixed zlib dictionary of SPDY/3 header compression (SPDY draft 3, section 2.6.10.1).
// Both ends preset it on their header compressor and decompressor; a peer that finds a different
// dictionary id (the Adler-32 in the zlib header, 0xe3c6a7c2) cannot decode our blocks.
//
// The dictionary is 1423 bytes: a run of u32-length-prefixed tokens (header names, methods,
// versions) followed by an unprefixed tail of common values. It is built from that structure
// here rather than spelled out byte by byte; a test pins its length and Adler-32.

const PREFIXED_TOKENS = [
  'options', 'head', 'post', 'put', 'delete', 'trace',
  'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges',
  'age', 'allow', 'authorization', 'cache-control', 'connection',
  'content-base', 'content-encoding', 'content-language', 'content-length',
  'content-location', 'content-md5', 'content-range', 'content-type',
  'date', 'etag', 'expect', 'expires', 'from', 'host',
  'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'pragma',
  'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent',
  'vary', 'via', 'warning', 'www-authenticate',
  'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url',
  'public', 'set-cookie', 'keep-alive', 'origin',
] as const;

const TAIL = [
  // Status codes, three digits each, no separators.
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505',
  '203 Non-Authoritative Information',
  '204 No Content',
  '301 Moved Permanently',
  '400 Bad Request',
  '401 Unauthorized',
  '403 Forbidden',
  '404 Not Found',
  '500 Internal Server Error',
  '501 Not Implemented',
  '503 Service Unavailable',
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ',
  'Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT',
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,',
  'text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch',
  'charset=utf-8charset=iso-8859-1,utf-,*,enq=0.',
].join('');

function build(): Buffer {
  const parts: Buffer[] = [];
  for (const token of PREFIXED_TOKENS) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(token.length, 0);
    parts.push(length, Buffer.from(token, 'latin1'));
  }
  parts.push(Buffer.from(TAIL, 'latin1'));
  return Buffer.concat(parts);
}

/** The SPDY/3 header dictionary. Treat as read-only: zlib copies it, nothing may mutate it. */
export const SPDY3_DICTIONARY: Buffer = build();

/** The dictionary id a zlib stream preset with SPDY3_DICTIONARY carries (its Adler-32). */
export const SPDY3_DICTIONARY_ID = 0xe3c6a7c2;

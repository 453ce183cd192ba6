// A request's Content-Type and Content-Encoding as an approval binds them. The API server reads a
// body by its media type (and a PATCH by its patch type: JSON, merge or strategic-merge patch of
// the same bytes do different things), so the media type is part of "the exact request".

/**
 * The media type of a Content-Type header: `type/subtype` lower-cased and trimmed, parameters
 * dropped (the API server chooses the decoder, and the patch type, by type/subtype only). The
 * subtype is kept exactly: `application/merge-patch+json` is not `application/json`. Null when
 * there is no header.
 */
export function mediaTypeOf(contentType: string | null | undefined): string | null {
  if (contentType === undefined || contentType === null) return null;
  return contentType.split(';')[0]!.trim().toLowerCase();
}

/** A Content-Encoding header lower-cased, its codings separated by `, `; null when there is none. */
export function contentEncodingOf(contentEncoding: string | null | undefined): string | null {
  if (contentEncoding === undefined || contentEncoding === null) return null;
  return contentEncoding
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .join(', ');
}

// Session recording: asciicast v2/v3 + raw sidecar, written by a SessionSink. See docs/recording.md.
export { createRecorder, recordingPaths, toSessionRecording, startMarkerLabel, RecordingError, NO_APPROVAL_DIR } from './recorder.js';
export type { RecorderOptions, RecorderHeaderInfo, RecorderSink, RecordingResult, RecordingTarSummary } from './recorder.js';
export { recoverRecording, INTERRUPTED_MARKER } from './recover.js';
export type { RecoverOptions, RecoveryResult } from './recover.js';
export { convertCast, encodeCast, eventsFor, exitMarkerLabel } from './convert.js';
export { AsciicastV2Encoder, encodeAsciicastV2, formatV2Time } from './asciicast-v2.js';
export { AsciicastV3Encoder, encodeAsciicastV3, formatV3Interval } from './asciicast-v3.js';
export { parseCast, castFormat, castFileFormat, CastParseError } from './cast-reader.js';
export { HEADER_EXTRA_KEY, outputText, resizeData, parseResizeData } from './events.js';
export type { CastFormat, CastHeader, ParsedCast, RecordingEvent, EventCode } from './events.js';
export { readRawSidecar, scanRawSidecarFile, RawChannel, RawSidecarFormatError } from './raw-sidecar.js';
export type { RawRecord, RawSidecarContents, RawSidecarMeta } from './raw-sidecar.js';
export { ForwardRecording, forwardRecordingPath } from './forward-recorder.js';
export type { ForwardRecordingOptions, ForwardRecordingResult } from './forward-recorder.js';
export { recogniseForward } from './forward-protocol.js';
export { TarLister, detectTarTransfer } from './tar-listing.js';
export type { TarFileEntry, TarTransfer, TarListSummary } from './tar-listing.js';
export { Utf8StreamDecoder, ChannelDecoders } from './utf8-decoder.js';

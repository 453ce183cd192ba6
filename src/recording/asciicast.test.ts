import { describe, expect, it } from 'vitest';
import { AsciicastV2Encoder, encodeAsciicastV2, formatV2Time } from './asciicast-v2.js';
import { AsciicastV3Encoder, encodeAsciicastV3, formatV3Interval } from './asciicast-v3.js';
import { eventLine, utf8EventLine } from './cast-lines.js';
import { CastParseError, parseCast } from './cast-reader.js';
import { convertCast, encodeCast } from './convert.js';
import { outputText, parseResizeData, shellJoin, type CastHeader, type RecordingEvent } from './events.js';

const header: CastHeader = {
  cols: 100,
  rows: 30,
  timestamp: 1_700_000_000,
  command: "sh -c 'echo hi'",
  title: 't',
  extra: { kube_bastion: { approval: 'apr_x', session: 'ses_y', command: ['sh', '-c', 'echo hi'] } },
};

const tricky = 'q"uote\\ back\u001b[1mbold\u001b[0m\r\n\t\b\f\u0000\u007f\u0085 \u2028\u2029 é中🙂';

const events: RecordingEvent[] = [
  { timeUs: 0, code: 'm', data: 'session ses_y started under approval apr_x' },
  { timeUs: 1, code: 'o', data: 'a' },
  { timeUs: 248_848, code: 'o', data: tricky },
  { timeUs: 1_001_376, code: 'i', data: '\r' },
  { timeUs: 1_500_000, code: 'r', data: '120x40' },
  { timeUs: 1_500_499, code: 'o', data: 'same ms' },
  { timeUs: 2_143_733, code: 'z', data: 'unknown code passes through' },
  { timeUs: 12_000_003, code: 'o', data: 'Bye!' },
];

describe('time formatting (as the asciinema CLI writes it)', () => {
  it('v2: microseconds, trailing zeros trimmed, at least one decimal', () => {
    expect(formatV2Time(0)).toBe('0.0');
    expect(formatV2Time(1_000_001)).toBe('1.000001');
    expect(formatV2Time(12_300_000)).toBe('12.3');
    expect(formatV2Time(12_000_003)).toBe('12.000003');
    expect(formatV2Time(3_000_000)).toBe('3.0');
  });

  it('v3: milliseconds, three decimals', () => {
    expect(formatV3Interval(0)).toBe('0.000');
    expect(formatV3Interval(887)).toBe('0.887');
    expect(formatV3Interval(61_050)).toBe('61.050');
  });

  it('v3 carries rounding forward instead of drifting', () => {
    const enc = new AsciicastV3Encoder();
    const lines = Array.from({ length: 1000 }, (_, i) => enc.event({ timeUs: (i + 1) * 400, code: 'o', data: '.' }));
    const intervals = lines.map((l) => JSON.parse(l)[0] as number);
    const total = intervals.reduce((a, b) => a + b, 0);
    expect(Math.abs(total - 0.4)).toBeLessThan(0.0005 + 1e-9);
    expect(intervals.every((x) => x === 0 || x === 0.001)).toBe(true);
  });
});

describe('asciicast v2', () => {
  it('writes the header with the standard keys first and the extra key after them', () => {
    const line = new AsciicastV2Encoder().header(header);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    expect(line.startsWith('{"version":2,"width":100,"height":30,"timestamp":1700000000,"command":')).toBe(true);
    expect(Object.keys(JSON.parse(line))).toEqual(['version', 'width', 'height', 'timestamp', 'command', 'title', 'kube_bastion']);
  });

  it('writes one line per event, JSON-escaped like serde_json', () => {
    const enc = new AsciicastV2Encoder();
    expect(enc.event({ timeUs: 248_848, code: 'o', data: '\u001b[1;31mHi\u001b[0m\n' })).toBe('[0.248848, "o", "\\u001b[1;31mHi\\u001b[0m\\n"]\n');
    const line = enc.event({ timeUs: 1, code: 'o', data: tricky });
    expect(line.split('\n')).toHaveLength(2);
    // U+2028/2029, DEL, C1 and non-ASCII stay literal; quotes, backslash and C0 are escaped
    expect(line).toContain('\u2028\u2029 é中🙂');
    expect(line).toContain('\\"uote\\\\ back\\u001b');
    expect(line).toContain('\\r\\n\\t\\b\\f\\u0000\u007f\u0085');
  });

  it('parses back what it writes: header, every event, exact times', () => {
    const text = encodeAsciicastV2({ header, events });
    const parsed = parseCast(text, 'v2');
    expect(parsed.version).toBe(2);
    expect(parsed.truncatedTail).toBe(false);
    expect(parsed.header).toEqual(header);
    expect(parsed.events).toEqual(events);
  });

  it('ignores an incomplete last line (a crash mid-write) and says so', () => {
    const text = encodeAsciicastV2({ header, events });
    const cut = text.slice(0, text.length - 7);
    const parsed = parseCast(cut, 'v2');
    expect(parsed.truncatedTail).toBe(true);
    expect(parsed.events).toEqual(events.slice(0, -1));
  });

  it('rejects a complete malformed line and a wrong version', () => {
    expect(() => parseCast('{"version":2,"width":80,"height":24}\n[1, "o"\n[2, "o", "x"]\n', 'v2')).toThrow(CastParseError);
    expect(() => parseCast('{"version":3,"term":{"cols":80,"rows":24}}\n', 'v2')).toThrow(/version must be 2/);
    expect(() => parseCast('', 'v2')).toThrow(CastParseError);
  });

  it('reads a cast as the asciinema docs show it', () => {
    const doc =
      '{"version": 2, "width": 80, "height": 24, "timestamp": 1504467315, "title": "Demo", "env": {"TERM": "xterm-256color", "SHELL": "/bin/zsh"}}\n' +
      '[0.248848, "o", "\\u001b[1;31mHello \\u001b[32mWorld!\\u001b[0m\\n"]\n[1.001376, "o", "That was ok\\rThis is better."]\n[1.500000, "m", ""]\n[2.143733, "o", "Now... "]\n[6.541828, "o", "Bye!"]\n';
    const p = parseCast(doc, 'v2');
    expect(p.header.termType).toBe('xterm-256color');
    expect(p.events.map((e) => e.timeUs)).toEqual([248_848, 1_001_376, 1_500_000, 2_143_733, 6_541_828]);
    expect(outputText(p.events)).toBe('\u001b[1;31mHello \u001b[32mWorld!\u001b[0m\nThat was ok\rThis is better.Now... Bye!');
  });
});

describe('asciicast v3', () => {
  it('writes term.cols/rows and intervals', () => {
    const text = encodeAsciicastV3({ header, events: events.slice(0, 4) });
    const lines = text.split('\n');
    expect(lines[0]!.startsWith('{"version":3,"term":{"cols":100,"rows":30},"timestamp":1700000000,')).toBe(true);
    expect(lines.slice(1, 5).map((l) => l.slice(0, l.indexOf(','))) ).toEqual(['[0.000', '[0.000', '[0.249', '[0.752']);
  });

  it('parses back what it writes, times within half a millisecond', () => {
    const text = encodeAsciicastV3({ header, events });
    const parsed = parseCast(text, 'v3');
    expect(parsed.version).toBe(3);
    expect(parsed.header).toEqual(header);
    expect(parsed.events.map((e) => [e.code, e.data])).toEqual(events.map((e) => [e.code, e.data]));
    parsed.events.forEach((e, i) => expect(Math.abs(e.timeUs - events[i]!.timeUs)).toBeLessThanOrEqual(500));
  });

  it('skips comments and blank lines; reads the x event', () => {
    const text = '{"version":3,"term":{"cols":80,"rows":24,"type":"xterm-256color"}}\n# a comment\n\n[0.5, "o", "x"]\n[0.387, "x", "0"]\n';
    const p = parseCast(text, 'v3');
    expect(p.header.termType).toBe('xterm-256color');
    expect(p.events).toEqual([
      { timeUs: 500_000, code: 'o', data: 'x' },
      { timeUs: 887_000, code: 'x', data: '0' },
    ]);
  });
});

describe('v2 <-> v3 conversion', () => {
  const withExit = (exit: 'x' | 'm'): RecordingEvent[] => [...events, exit === 'x' ? { timeUs: 12_500_000, code: 'x', data: '3' } : { timeUs: 12_500_000, code: 'm', data: 'exit status 3' }];

  it('v2 -> v3 -> v2 keeps data, order and times within 1 ms', () => {
    const v2 = encodeAsciicastV2({ header, events: withExit('m') });
    const v3 = convertCast(v2, 'v3');
    expect(parseCast(v3).events.at(-1)).toEqual({ timeUs: 12_500_000, code: 'x', data: '3' });
    const back = parseCast(convertCast(v3, 'v2'));
    const orig = parseCast(v2);
    expect(back.header).toEqual(orig.header);
    expect(back.events.map((e) => [e.code, e.data])).toEqual(orig.events.map((e) => [e.code, e.data]));
    back.events.forEach((e, i) => expect(Math.abs(e.timeUs - orig.events[i]!.timeUs)).toBeLessThanOrEqual(1000));
  });

  it('v3 -> v2 -> v3 is exact', () => {
    const v3 = encodeAsciicastV3({ header, events: withExit('x') });
    const v2 = convertCast(v3, 'v2');
    expect(parseCast(v2).events.at(-1)).toEqual({ timeUs: 12_500_000, code: 'm', data: 'exit status 3' });
    expect(convertCast(v2, 'v3')).toBe(v3);
  });

  it('keeps the kube_bastion header key and drops v2-only duration in v3', () => {
    const v2 = encodeAsciicastV2({ header: { ...header, duration: 12.5 }, events: [] });
    const v3 = JSON.parse(convertCast(v2, 'v3').split('\n')[0]!);
    expect(v3.kube_bastion).toEqual(header.extra.kube_bastion);
    expect(v3.duration).toBeUndefined();
    expect(v3.term).toEqual({ cols: 100, rows: 30 });
  });

  it('re-encodes to the same version unchanged', () => {
    const v2 = encodeAsciicastV2({ header, events });
    expect(encodeCast(parseCast(v2), 'v2')).toBe(v2);
  });
});

describe('helpers', () => {
  it('resize data and shell quoting', () => {
    expect(parseResizeData('100x50')).toEqual({ cols: 100, rows: 50 });
    expect(parseResizeData('100 x 50')).toBeUndefined();
    expect(shellJoin(['sh', '-c', "echo 'hi' there"])).toBe(`sh -c 'echo '\\''hi'\\'' there'`);
  });
});

describe('event lines from bytes (utf8EventLine)', () => {
  it('writes exactly what eventLine writes for the decoded text, across escape pieces, NUL runs and parts split mid-character', () => {
    const text = `${'\0'.repeat(40_000)}é"\\\n\t\x01\x7f\u2028 日本 ${'\0x'.repeat(9_000)}😀${'a'.repeat(20_000)}\0`;
    const bytes = Buffer.from(text, 'utf8');
    const want = eventLine('1.5', 'o', text);
    for (const cut of [0, 1, 16_384, 40_001, 40_002, bytes.length - 3]) {
      const parts = [bytes.subarray(0, cut), bytes.subarray(cut)].filter((p) => p.length > 0);
      expect(Buffer.concat(utf8EventLine('1.5', 'o', parts)).toString('utf8')).toBe(want);
    }
  });
});

// The cast reader's own rules (version sniffing, line handling, the single-line reader crash
// recovery uses). Round trips with the encoders and conversion are in asciicast.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { castEventOf, castFileFormat, castFormat, CastParseError, parseCast } from './cast-reader.js';

const V2 = '{"version":2,"width":80,"height":24}';
const V3 = '{"version":3,"term":{"cols":80,"rows":24}}';

describe('castFormat', () => {
  it('reads the version from the first line, of a whole cast or of the line alone', () => {
    expect(castFormat(`${V2}\n[0.5, "o", "x"]\n`)).toBe('v2');
    expect(castFormat(V3)).toBe('v3');
  });

  it('refuses what is not an asciicast v2 or v3 header', () => {
    for (const text of ['', 'hello\n', '[1, "o", "x"]\n', '{"version":1}\n', '{"width":80}\n']) {
      expect(() => castFormat(text), text).toThrow(CastParseError);
    }
  });

  it('reads a file without reading all of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kb-cast-'));
    try {
      const file = join(dir, 'a.cast');
      writeFileSync(file, `${V3}\n${'[0.001, "o", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]\n'.repeat(5000)}`);
      await expect(castFileFormat(file)).resolves.toBe('v3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseCast', () => {
  it('turns v2 absolute times and v3 intervals into the same absolute microseconds', () => {
    const v2 = parseCast(`${V2}\n[0.5, "o", "a"]\n[1.25, "o", "b"]\n`);
    const v3 = parseCast(`${V3}\n[0.5, "o", "a"]\n[0.75, "o", "b"]\n`);
    expect(v2.events).toEqual(v3.events);
    expect(v2.events.map((e) => e.timeUs)).toEqual([500_000, 1_250_000]);
  });

  it('holds a cast to the version asked for', () => {
    expect(parseCast(`${V2}\n`, 'v2').version).toBe(2);
    expect(() => parseCast(`${V2}\n`, 'v3')).toThrow(/version must be 3/);
  });

  it('reads CRLF line ends; `#` comments only in v3', () => {
    expect(parseCast(`${V2}\r\n[0.5, "o", "a"]\r\n`).events).toHaveLength(1);
    expect(parseCast(`${V3}\n# note\n[0.5, "o", "a"]\n`).events).toHaveLength(1);
    expect(() => parseCast(`${V2}\n# note\n[0.5, "o", "a"]\n`)).toThrow(/line 2: event is not valid JSON/);
  });

  it('forgives only a torn last line, and names the line of any other fault', () => {
    expect(parseCast(`${V2}\n[0.5, "o", "a"]\n[0.7, "o", "b`)).toMatchObject({ truncatedTail: true, events: [{ data: 'a' }] });
    expect(() => parseCast(`${V2}\n[0.5, "o", "a"\n[0.7, "o", "b"]\n`)).toThrow(/line 2: event is not valid JSON/);
    // An unterminated line that is JSON but not an event is a fault, not a tear.
    expect(() => parseCast(`${V2}\n[0.5, "o", "a"]\n[-1, "o", "b"]`)).toThrow(/line 3: event time/);
    expect(() => parseCast(`${V2}\n[0.5, "", "a"]\n`)).toThrow(/line 2: event code/);
    expect(() => parseCast(`${V2}\n[0.5, "o", 5]\n`)).toThrow(/line 2: event data/);
    expect(() => parseCast(V2)).toThrow(/no complete header line/);
  });
});

describe('castEventOf (one line, never throws)', () => {
  it('reads an event line and nothing else', () => {
    expect(castEventOf('[1.5, "m", "session interrupted"]')).toEqual({ seconds: 1.5, code: 'm', data: 'session interrupted' });
    expect(castEventOf('[1.5, "m", "x"]\r')).toEqual({ seconds: 1.5, code: 'm', data: 'x' });
    for (const line of [V2, '# comment', '[1.5, "o", "tor', '[1.5, "o"]', '["1", "o", "x"]', '']) expect(castEventOf(line), line).toBeUndefined();
  });
});

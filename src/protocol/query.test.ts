import { describe, expect, it } from 'vitest';
import { parseRemoteCommandQuery } from './options.js';
import { apiServerBool, QUERY_BOOL_DISAGREE, QUERY_FALSE, QUERY_TRUE, queryBool, queryPorts } from './query.js';

/** Go's strconv.ParseBool, literally (src/strconv/atob.go). */
function goParseBool(s: string): boolean | 'error' {
  switch (s) {
    case '1': case 't': case 'T': case 'TRUE': case 'true': case 'True':
      return true;
    case '0': case 'f': case 'F': case 'FALSE': case 'false': case 'False':
      return false;
    default:
      return 'error';
  }
}

const q = (s: string): URLSearchParams => new URLSearchParams(s);

describe('queryBool: the strconv.ParseBool table', () => {
  const table: [string, boolean | 'refused'][] = [
    ['1', true], ['t', true], ['T', true], ['TRUE', true], ['true', true], ['True', true],
    ['0', false], ['FALSE', false], ['false', false], ['False', false],
    // ParseBool says false, the API server true: no spelling may mean two things.
    ['f', 'refused'], ['F', 'refused'],
    // ParseBool refuses these; the API server reads them as true (or, for case variants of false, false).
    ['yes', 'refused'], ['no', 'refused'], ['', 'refused'], ['tRuE', 'refused'], ['fAlSe', 'refused'], ['2', 'refused'], [' true', 'refused'], ['on', 'refused'],
  ];
  it.each(table)('stdin=%j -> %s', (value, expected) => {
    const got = queryBool(q(`stdin=${encodeURIComponent(value)}`), 'stdin');
    if (expected === 'refused') {
      expect(got.ok).toBe(false);
      if (!got.ok) {
        expect(got.parameter).toBe('stdin');
        expect(got.message).toContain(`stdin=${JSON.stringify(value)}`);
      }
    } else {
      expect(got).toEqual({ ok: true, value: expected });
    }
  });

  it('accepts exactly the spellings where ParseBool and the API server agree', () => {
    for (const v of [...QUERY_TRUE, ...QUERY_FALSE]) {
      expect(goParseBool(v)).toBe(apiServerBool([v]));
    }
    for (const v of QUERY_BOOL_DISAGREE) {
      expect(goParseBool(v)).toBe(false);
      expect(apiServerBool([v])).toBe(true);
    }
    // Every ParseBool spelling is either accepted or one of the disagreeing two.
    for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']) {
      expect([...QUERY_TRUE, ...QUERY_FALSE, ...QUERY_BOOL_DISAGREE]).toContain(v);
    }
  });

  it('reads absent as false and refuses a repeat', () => {
    expect(queryBool(q('tty=true'), 'stdin')).toEqual({ ok: true, value: false });
    const twice = queryBool(q('stdin=true&stdin=true'), 'stdin');
    expect(twice).toMatchObject({ ok: false, parameter: 'stdin' });
  });
});

describe('apiServerBool: Convert_Slice_string_To_bool', () => {
  it('reads the first value; only 0 and case-insensitive false are false', () => {
    expect(apiServerBool([])).toBe(false);
    expect(apiServerBool(['0'])).toBe(false);
    expect(apiServerBool(['fAlSe'])).toBe(false);
    expect(apiServerBool(['False', 'true'])).toBe(false);
    expect(apiServerBool(['yes'])).toBe(true);
    expect(apiServerBool([''])).toBe(true);
    expect(apiServerBool(['f'])).toBe(true);
    expect(apiServerBool(['true', 'false'])).toBe(true);
  });
});

describe('queryPorts: Convert_Slice_string_To_Slice_int32', () => {
  it('splits every value on commas, keeping order and repeats', () => {
    expect(queryPorts(q('ports=8080,9090&ports=5432&ports=8080'))).toEqual({ ok: true, value: [8080, 9090, 5432, 8080] });
    expect(queryPorts(q('ports=080'))).toEqual({ ok: true, value: [80] });
    expect(queryPorts(q(''))).toEqual({ ok: true, value: [] });
    expect(queryPorts(q('ports=65535'))).toEqual({ ok: true, value: [65535] });
  });
  it.each(['0', '65536', '-1', '+80', '8080,', ',8080', '', ' 80', '0x50', '80.0', 'http'])('refuses ports=%j', (value) => {
    const got = queryPorts(q(`ports=${encodeURIComponent(value)}`));
    expect(got).toMatchObject({ ok: false, parameter: 'ports' });
  });
});

describe('parseRemoteCommandQuery', () => {
  it('reads the Python client spelling and keeps repeated commands in order, unsplit', () => {
    const python = parseRemoteCommandQuery(q('command=sh&command=-c&command=echo+a%2Cb&container=app&stderr=True&stdin=False&stdout=True&tty=False'));
    expect(python).toEqual({ command: ['sh', '-c', 'echo a,b'], container: 'app', stdin: false, stdout: true, stderr: true, tty: false });
  });
  it('does not depend on key order', () => {
    const a = parseRemoteCommandQuery(q('stdin=1&command=a&tty=T&command=b'));
    const b = parseRemoteCommandQuery(q('command=a&command=b&tty=T&stdin=1'));
    expect(a).toEqual(b);
    expect(a).toMatchObject({ command: ['a', 'b'], stdin: true, tty: true, stdout: false });
  });
});

import { describe, expect, it } from 'vitest';
import { findDuplicateKey, formatJsonPath } from './json-keys.js';

const dup = (text: string): string | null => {
  JSON.parse(text); // every input here is JSON the endpoint would accept
  const path = findDuplicateKey(text);
  return path === null ? null : formatJsonPath(path);
};

describe('findDuplicateKey', () => {
  it('finds the review probe: two "spec" keys of a pod', () => {
    const text =
      '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"dup","namespace":"demo"},' +
      '"spec":{"hostPID":true,"hostNetwork":true,"volumes":[{"name":"root","hostPath":{"path":"/"}}],' +
      '"containers":[{"name":"app","image":"busybox","securityContext":{"privileged":true}}]},' +
      '"spec":{"containers":[{"name":"app","image":"busybox"}]}}';
    expect(dup(text)).toBe('spec');
  });

  it('finds duplicates at any depth, inside arrays, and names the path', () => {
    expect(dup('{"spec":{"containers":[{"name":"a"},{"name":"b","securityContext":{"privileged":false,"privileged":true}}]}}')).toBe(
      'spec.containers[1].securityContext.privileged',
    );
    expect(dup('[[1,2],[{"a":1}],{"x":{"y":[{},{"z":1,"z":2}]}}]')).toBe('[2].x.y[1].z');
    expect(dup('{"metadata":{"labels":{"app.kubernetes.io/name":"a","app.kubernetes.io/name":"b"}}}')).toBe('metadata.labels["app.kubernetes.io/name"]');
  });

  it('compares keys after unescaping: "spec" and "sp\\u0065c" are one key', () => {
    expect(dup('{"spec":{},"sp\\u0065c":{}}')).toBe('spec');
    expect(dup('{"sp\\u0065c":{},"spec":{}}')).toBe('spec');
    expect(dup('{"a\\/b":1,"a/b":2}')).toBe('["a/b"]');
    expect(dup('{"\\ud83d\\ude00":1,"\u{1F600}":2}')).toBe('["\u{1F600}"]');
    expect(dup('{"\\"":1,"\\u0022":2}')).toBe('["\\""]');
  });

  it('reads lone surrogates as U+FFFD, as the Go decoder does', () => {
    expect(dup('{"\\ud800":1,"\\udc00":2}')).toBe('["\uFFFD"]');
    expect(dup('{"\\ufffd":1,"\\ud800":2}')).toBe('["\uFFFD"]');
  });

  it('is not fooled by keys and values that only look alike', () => {
    expect(dup('{"spec":1,"Spec":2,"spec ":3}')).toBeNull();
    expect(dup('{"a":{"b":1},"b":{"a":1}}')).toBeNull();
    expect(dup('[{"a":1},{"a":1}]')).toBeNull();
    expect(dup('{"a":"\\"spec\\":1,","spec":"}{\\\\","b":"\\\\"}')).toBeNull();
    expect(dup('{"k":"a\\\\","k2":"\\\\\\""}')).toBeNull();
    expect(dup(' { "a" : [ 1 , true , null , -1.5e3 , "x" ] , "b" : { } } ')).toBeNull();
    expect(dup('"spec"')).toBeNull();
    expect(dup('42')).toBeNull();
    expect(dup('[]')).toBeNull();
  });

  it('finds a duplicate after an empty object or array closes', () => {
    expect(dup('{"a":{},"b":[],"a":1}')).toBe('a');
    expect(dup('{"a":[{}],"c":[[]],"c":0}')).toBe('c');
  });

  it('handles deep nesting without the stack', () => {
    const depth = 200_000;
    const deep = '['.repeat(depth) + '{"a":1,"a":2}' + ']'.repeat(depth);
    expect(findDuplicateKey(deep)?.length).toBe(depth + 1);
  });

  it('throws on text that is not JSON', () => {
    for (const bad of ['{"a":1', '{"a" 1}', '{"a":1,}', '[1,]', '{a:1}', '[1 2]', '{"a":1}x', '"open', '']) {
      expect(() => findDuplicateKey(bad), bad).toThrow(SyntaxError);
    }
  });
});

describe('formatJsonPath', () => {
  it('names the top level', () => {
    expect(formatJsonPath([])).toBe('(the top level)');
    expect(formatJsonPath([0, 'a'])).toBe('[0].a');
  });
});

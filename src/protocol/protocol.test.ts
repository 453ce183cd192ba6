import { describe, expect, it } from 'vitest';
import { decodeStatus, encodeStatus, exitCodeOf, exitCodeStatus, successStatus } from './status.js';
import { encodeResize, ResizeDecodeError, ResizeDecoder } from './resize.js';
import { ALL_VERSIONS, negotiate, parseOffer, protocolByName, v1, v3, v4, v5 } from './versions/index.js';
import { effectiveStreamOptions, parseRemoteCommandQuery } from './options.js';

describe('metav1.Status', () => {
  it('encodes success exactly as the kubelet does', () => {
    expect(encodeStatus(successStatus()).toString()).toBe('{"metadata":{},"status":"Success"}');
  });

  it('carries exit codes as data under details.causes[].reason=ExitCode', () => {
    const status = decodeStatus(encodeStatus(exitCodeStatus(7)));
    expect(status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '7' }] } });
    expect(exitCodeOf(status)).toBe(7);
    expect(exitCodeOf(successStatus())).toBe(0);
    expect(exitCodeOf({ metadata: {}, status: 'Failure', message: 'boom' })).toBeNull();
    expect(exitCodeOf({ metadata: {}, status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '300' }] } })).toBeNull();
  });

  it('refuses JSON that is not a Status', () => {
    expect(() => decodeStatus('{"kind":"Pod"}')).toThrow(TypeError);
    expect(() => decodeStatus('not json')).toThrow();
  });
});

describe('resize messages', () => {
  it('encode with Go field names and a newline', () => {
    expect(encodeResize({ width: 100, height: 30 }).toString()).toBe('{"Width":100,"Height":30}\n');
  });

  it('decode across frame splits and several per frame', () => {
    const d = new ResizeDecoder();
    expect(d.push('{"Width":100,')).toEqual([]);
    expect(d.push('"Height":30}\n{"Width":1')).toEqual([{ width: 100, height: 30 }]);
    expect(d.push('20,"Height":40}\n{"Width":1,"Height":2}')).toEqual([
      { width: 120, height: 40 },
      { width: 1, height: 2 },
    ]);
  });

  it('reject garbage, out-of-range sizes and unbounded partial input', () => {
    expect(() => new ResizeDecoder().push('hello')).toThrow(ResizeDecodeError);
    expect(() => new ResizeDecoder().push('{"Width":-1,"Height":3}')).toThrow(ResizeDecodeError);
    expect(() => new ResizeDecoder().push('{"Width":70000,"Height":3}')).toThrow(ResizeDecodeError);
    expect(() => new ResizeDecoder().push(`{"Width":${'1'.repeat(5000)}`)).toThrow(ResizeDecodeError);
  });
});

describe('channel protocol versions', () => {
  it('are named as on the wire, most preferred first', () => {
    expect(ALL_VERSIONS.map((p) => p.name)).toEqual(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
    expect(protocolByName('v1.channel.k8s.io')).toBeUndefined();
  });

  it('differ only where the protocol does', () => {
    expect([v1.supportsResize, v3.supportsResize]).toEqual([false, true]);
    expect([v4.supportsStreamClose, v5.supportsStreamClose]).toEqual([false, true]);
    expect(v4.encodeError(exitCodeStatus(2)).toString()).toContain('"NonZeroExitCode"');
    expect(v3.encodeError(successStatus()).length).toBe(0);
    expect(v3.encodeError({ metadata: {}, status: 'Failure', message: 'boom' }).toString()).toBe('boom');
    expect(exitCodeOf(v1.decodeError(Buffer.from('command terminated with non-zero exit code: exit code 5')))).toBe(5);
    expect(v5.decodeError(Buffer.from('{"metadata":{},"status":"Success"}')).status).toBe('Success');
  });

  it('negotiates from repeated headers and comma lists alike', () => {
    const offered = parseOffer(['v5.channel.k8s.io, v4.channel.k8s.io', 'channel.k8s.io']);
    expect(offered).toEqual(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io']);
    expect(negotiate(offered, ['v4.channel.k8s.io', 'channel.k8s.io'])).toBe('v4.channel.k8s.io');
    expect(negotiate(['foo'], ['v4.channel.k8s.io'])).toBeUndefined();
    expect(parseOffer(undefined)).toEqual([]);
  });
});

describe('exec query', () => {
  it('reads kubectl and client-node spellings alike', () => {
    const kubectl = parseRemoteCommandQuery(new URLSearchParams('command=echo&command=a%26b%3Dc&command=two++spaces&command=&container=app&stderr=true&stdout=true'));
    expect(kubectl).toEqual({ command: ['echo', 'a&b=c', 'two  spaces', ''], container: 'app', stdin: false, stdout: true, stderr: true, tty: false });
    const clientNode = parseRemoteCommandQuery(new URLSearchParams('stdout=true&stderr=true&stdin=false&tty=false&command=echo&command=hi%20there&container=only'));
    expect(clientNode).toMatchObject({ command: ['echo', 'hi there'], stdin: false, tty: false });
  });

  it('drops stderr with a TTY', () => {
    expect(effectiveStreamOptions({ stdin: true, stdout: true, stderr: true, tty: true })).toEqual({ stdin: true, stdout: true, stderr: false, tty: true });
  });
});

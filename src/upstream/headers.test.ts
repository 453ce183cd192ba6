// The upstream header allow-list and the impersonation headers the bastion sets.
import { describe, expect, it } from 'vitest';
import { forwardableHeaders, impersonationHeaders } from './headers.js';

describe('forwardableHeaders', () => {
  it('keeps only the allow-listed headers', () => {
    expect(
      forwardableHeaders({
        accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
        'accept-encoding': 'gzip',
        'content-type': 'application/merge-patch+json',
        'content-length': '12',
        'user-agent': 'kubectl/v1.33.1',
        'kubectl-command': 'kubectl patch',
        'kubectl-session': 'abc',
        authorization: 'Bearer x',
        'impersonate-user': 'admin',
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-host': 'h',
        'x-original-url': '/x',
        'x-http-method-override': 'DELETE',
        expect: '100-continue',
        'audit-id': 'forged',
        'sec-websocket-protocol': 'v5.channel.k8s.io',
        'x-stream-protocol-version': 'v4.channel.k8s.io',
        host: 'bastion',
        connection: 'keep-alive',
        'transfer-encoding': 'chunked',
      }),
    ).toEqual({
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
      'accept-encoding': 'gzip',
      'content-type': 'application/merge-patch+json',
      'content-length': '12',
      'user-agent': 'kubectl/v1.33.1',
      'kubectl-command': 'kubectl patch',
      'kubectl-session': 'abc',
    });
  });

  it('drops an allowed header the Connection header names (hop-by-hop for that connection)', () => {
    expect(forwardableHeaders({ connection: 'close, User-Agent', 'user-agent': 'x', accept: '*/*' })).toEqual({ accept: '*/*' });
  });
});

describe('impersonationHeaders', () => {
  it('names the agent, and the approval and session when given, as percent-encoded extra keys', () => {
    const identity = { user: 'kube-bastion:agent:bot', extra: { 'kube-bastion.io/agent-id': 'ag1' } };
    expect(impersonationHeaders(identity)).toEqual({ 'impersonate-user': 'kube-bastion:agent:bot', 'impersonate-extra-kube-bastion.io%2Fagent-id': 'ag1' });
    expect(impersonationHeaders(identity, { approvalId: 'apr_1', sessionId: 'ses_1' })).toEqual({
      'impersonate-user': 'kube-bastion:agent:bot',
      'impersonate-extra-kube-bastion.io%2Fagent-id': 'ag1',
      'impersonate-extra-kube-bastion.io%2Fapproval-id': 'apr_1',
      'impersonate-extra-kube-bastion.io%2Fsession-id': 'ses_1',
    });
    expect(impersonationHeaders(identity, { approvalId: null, sessionId: null })).toEqual(impersonationHeaders(identity));
  });
});

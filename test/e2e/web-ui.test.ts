// The web UI in real Chromium (playwright-core, Debian's /usr/bin/chromium).
//
// 1. Standalone: the real web UI routes plus a fake /v1 on one small HTTP server, so the
//    page is proven on its own: sign-in (401 error, agent-token refusal), the approvals list,
//    approve/deny/revoke reaching the API with the bearer token, the session view replaying a
//    real asciicast v2 next to the approval record, downloads, a reviewer's read-only view, and
//    no CSP violation anywhere.
// 2. Wired: the same page served by a real bastion's control endpoint, deciding a held kubectl
//    exec and replaying its session.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import express from 'express';
import { webUiRoutes } from '../../src/api/web-ui.js';
import type { Approval } from '../../src/model/approval.js';
import type { Session } from '../../src/store/types.js';
import { startTestBastion, type TestBastion } from '../helpers/bastion.js';
import { freshHome, kubectlPath } from '../helpers/kubectl.js';

// Browser globals for the callbacks that run in the page (the project's lib has no DOM types).
declare const document: {
  addEventListener(type: 'securitypolicyviolation', listener: (e: { violatedDirective: string; blockedURI: string; sourceFile: string; lineNumber: number }) => void): void;
  querySelector(selector: string): { textContent: string | null } | null;
};
declare const sessionStorage: { readonly length: number; getItem(key: string): string | null; setItem(key: string, value: string): void };
declare const location: { hash: string };

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT_DIR = '/tmp';

async function launch(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kb-webui-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1360, height: 900 },
    acceptDownloads: true,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A page that records CSP violations, page errors and console errors. */
async function watchedPage(context: BrowserContext): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // 4xx answers the test provokes on purpose show up as console errors ("Failed to load resource").
    if (msg.type() === 'error' && !/status of 40[13]/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  return { page, problems };
}

async function signIn(page: Page, baseUrl: string, token: string, hash = ''): Promise<void> {
  await page.goto(`${baseUrl}/${hash}`);
  await page.getByLabel('User token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-name').filter({ hasText: /\(/ }).waitFor();
}

async function playerShows(page: Page, text: string, timeout = 10_000): Promise<void> {
  await page.waitForFunction((t) => document.querySelector('.ap-term')?.textContent?.includes(t) === true, text, { timeout });
}

// ---------------------------------------------------------------------------------------------
// 1. Standalone: the real UI routes + a fake /v1

// An asciicast v2 file as the bastion's recorder writes it (header extras, start and exit markers).
const CAST = [
  '{"version":2,"width":80,"height":12,"timestamp":1748855643,"command":"sh","title":"claude: exec demo/web-0/app","kube_bastion":{"version":1,"approval":"apr_approved00000000000","session":"ses_abcdefghij0123456789","agent":"claude","namespace":"demo","pod":"web-0","container":"app","command":["sh"],"tty":true,"transport":"websocket","protocol":"v5.channel.k8s.io","stdin_recorded":true,"raw":"ses_abcdefghij0123456789.raw","started_at":"2025-06-02T09:14:03.120Z"}}',
  '[0.0, "m", "session ses_abcdefghij0123456789 started under approval apr_approved00000000000"]',
  '[0.05, "o", "$ "]',
  '[0.4, "i", "echo hello from the session\\r"]',
  '[0.45, "o", "echo hello from the session\\r\\n"]',
  '[0.5, "o", "\\u001b[1;32mhello from the session\\u001b[0m\\r\\n"]',
  '[0.9, "o", "$ "]',
  '[1.2, "o", "exit\\r\\n"]',
  '[1.25, "m", "exit status 0"]',
].join('\n') + '\n';
const CAST_SHA = createHash('sha256').update(CAST).digest('hex');
const EVIDENCE = Buffer.from('fake tar bytes');

const T0 = '2025-06-02T09:14:03.120Z';
const T1 = '2025-06-02T09:15:10.000Z';

function approvalFixture(over: Partial<Approval> & Pick<Approval, 'id' | 'state'>): Approval {
  return {
    agent: 'claude',
    agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
    scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec'] },
    requestedBy: 'agent:claude',
    decidedBy: null,
    reason: null,
    ttlSeconds: 900,
    createdAt: T0,
    nobodyWaitingSince: null,
    decidedAt: null,
    expiresAt: new Date(Date.now() + 300_000).toISOString(),
    revokedAt: null,
    revokedBy: null,
    decisions: [],
    sessionsStarted: 0,
    request: { method: 'POST', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['sh', '-c', 'ls /data'] },
    ...over,
  };
}

// Partial: the fake answers what the UI reads; the row type may grow fields meanwhile.
const SESSION = {
  id: 'ses_abcdefghij0123456789',
  approvalId: 'apr_approved00000000000',
  agent: 'claude',
  agentId: '0f8e5a4c-7d2b-4e1a-9c3f-6b5d8e2a1f70',
  state: 'ended',
  operation: 'exec',
  transport: 'websocket',
  protocol: 'v5.channel.k8s.io',
  upstreamProtocol: 'v5.channel.k8s.io',
  namespace: 'demo',
  pod: 'web-0',
  container: 'app',
  command: ['sh'],
  tty: true,
  startedAt: T0,
  endedAt: T1,
  endReason: 'completed',
  exitCode: 0,
  status: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' } as Session['status'],
  bytesIn: 28,
  bytesOut: 91,
  castPath: '/var/lib/kube-bastion/recordings/ses_abcdefghij0123456789.cast',
  castSha256: CAST_SHA,
  rawPath: '/var/lib/kube-bastion/recordings/ses_abcdefghij0123456789.raw',
  rawSha256: 'b'.repeat(64),
  channelSha256: { stdin: 'c'.repeat(64), stdout: 'd'.repeat(64) },
  files: [{ name: 'data/<img src=x>.txt', size: 2048, sha256: 'e'.repeat(64) }],
} satisfies Partial<Session>;

interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  body: string;
}

const USERS: Record<string, { id: string; name: string; role: string }> = {
  kbu_approver_token: { id: 'u1', name: 'alice', role: 'approver' },
  kbu_reviewer_token: { id: 'u2', name: 'rita', role: 'reviewer' },
};

async function startFake(): Promise<{ url: string; seen: Seen[]; approvals: Map<string, Approval>; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  const approvals = new Map<string, Approval>();
  const add = (a: Approval) => approvals.set(a.id, a);
  add(approvalFixture({ id: 'apr_pending000000000001', state: 'pending' }));
  // Its client went away: nobody waits on it any more.
  add(
    approvalFixture({
      id: 'apr_pending000000000002',
      state: 'pending',
      scope: { kind: 'stream', namespace: 'demo', pod: 'db-0', container: 'pg', verbs: ['exec'], commands: [['psql', '-c', 'select 1']] },
      request: { method: 'GET', path: '/api/v1/namespaces/demo/pods/db-0/exec', command: ['psql', '-c', 'select 1'], client: '10.0.4.17:52814', rule: 'pod-streams-need-approval', policyHash: 'f'.repeat(64) },
      nobodyWaitingSince: T1,
    }),
  );
  add(
    approvalFixture({
      id: 'apr_approved00000000000',
      state: 'approved',
      requestedBy: 'agent:claude',
      decidedBy: 'user:alice',
      reason: 'INC-4211: inspect <b>the</b> data volume',
      decidedAt: T0,
      decisions: [{ kind: 'approved', by: 'user:alice', at: T0, reason: 'INC-4211: inspect <b>the</b> data volume', ttlSeconds: 900, expiresAt: new Date(Date.now() + 300_000).toISOString() }],
      sessionsStarted: 1,
      scope: { kind: 'stream', namespace: 'demo', pod: 'web-0', container: 'app', verbs: ['exec', 'attach'], commands: [['sh']], maxSessions: 3 },
      request: { method: 'GET', path: '/api/v1/namespaces/demo/pods/web-0/exec', command: ['sh'], client: '10.0.4.17:40022', rule: 'pod-streams-need-approval', policyHash: 'a'.repeat(64) },
    }),
  );
  add(
    approvalFixture({
      id: 'apr_denied0000000000000',
      state: 'denied',
      decidedBy: 'user:alice',
      reason: 'not during the freeze',
      decidedAt: T0,
      expiresAt: null,
      decisions: [{ kind: 'denied', by: 'user:alice', at: T0, reason: 'not during the freeze', ttlSeconds: null, expiresAt: null }],
    }),
  );

  // The fake /v1 on express, next to the real UI routes; `lastBody` is the request body as sent.
  let lastBody = '';
  const app = express();
  app.use((req, _res, next) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      lastBody = Buffer.concat(chunks).toString();
      seen.push({ method: req.method, path: req.originalUrl, auth: req.headers.authorization, body: lastBody });
      next();
    });
  });
  app.use(webUiRoutes().router);
  type FakeHandler = (ctx: { req: http.IncomingMessage; res: http.ServerResponse; params: Record<string, string>; query: URLSearchParams }) => unknown;
  interface FakeRouter {
    add(method: 'GET' | 'POST', path: string, handler: FakeHandler): FakeRouter;
  }
  const router: FakeRouter = {
    add(method, path, handler) {
      app[method === 'GET' ? 'get' : 'post'](path, (req, res) => {
        void handler({ req, res, params: req.params as Record<string, string>, query: new URL(req.originalUrl, 'http://fake.invalid').searchParams });
      });
      return router;
    },
  };
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  const problem = (res: http.ServerResponse, status: number, code: string, message: string) => json(res, status, { error: { code, message } });
  const user = (req: http.IncomingMessage, res: http.ServerResponse, roles = ['approver', 'admin', 'reviewer']) => {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    const u = m ? USERS[m[1]!] : undefined;
    if (!u) {
      problem(res, 401, 'UNAUTHENTICATED', 'unknown or disabled user token');
      return undefined;
    }
    if (!roles.includes(u.role)) {
      problem(res, 403, 'FORBIDDEN', `role ${u.role} may not do this (needs ${roles.join(' or ')})`);
      return undefined;
    }
    return u;
  };
  const decide = (kind: 'approve' | 'deny' | 'revoke') =>
    router.add('POST', `/v1/approvals/:id/${kind}`, async ({ req, res, params }) => {
      const u = user(req, res, ['approver', 'admin']);
      if (!u) return;
      const a = approvals.get(params.id!);
      if (!a) return problem(res, 404, 'NOT_FOUND', 'no such approval');
      const body = lastBody ? (JSON.parse(lastBody) as { ttlSeconds?: number; reason?: string }) : {};
      if (kind === 'deny' && !body.reason) return problem(res, 400, 'INVALID_FIELD', '"reason" must be a non-empty string');
      const now = new Date().toISOString();
      const ttlSeconds = body.ttlSeconds ?? a.ttlSeconds;
      const expiresAt = new Date(Date.now() + ttlSeconds * 1000).toISOString();
      const by = `user:${u.name}`;
      const next: Approval = {
        ...a,
        state: kind === 'approve' ? 'approved' : kind === 'deny' ? 'denied' : 'revoked',
        decidedBy: kind === 'revoke' ? a.decidedBy : by,
        decidedAt: kind === 'revoke' ? a.decidedAt : now,
        // As the service does: a revocation keeps the approver's reason and is its own decision.
        reason: kind === 'revoke' ? a.reason : (body.reason ?? a.reason),
        ...(kind === 'approve' ? { ttlSeconds, expiresAt } : {}),
        ...(kind === 'deny' ? { expiresAt: null } : {}),
        ...(kind === 'revoke' ? { revokedAt: now, revokedBy: by } : {}),
        decisions: [
          ...a.decisions,
          kind === 'approve'
            ? { kind: 'approved', by, at: now, reason: body.reason ?? null, ttlSeconds, expiresAt }
            : { kind: kind === 'deny' ? 'denied' : 'revoked', by, at: now, reason: body.reason ?? null, ttlSeconds: null, expiresAt: null },
        ],
      };
      approvals.set(a.id, next);
      json(res, 200, next);
    });
  router
    .add('GET', '/v1/whoami', async ({ req, res }) => {
      const u = user(req, res);
      if (u) json(res, 200, { ...u, createdAt: T0, disabledAt: null });
    })
    .add('GET', '/v1/approvals', async ({ req, res, query }) => {
      if (!user(req, res)) return;
      const state = query.get('state');
      json(res, 200, { items: [...approvals.values()].filter((a) => !state || a.state === state) });
    })
    .add('GET', '/v1/approvals/:id', async ({ req, res, params }) => {
      if (!user(req, res)) return;
      const a = approvals.get(params.id!);
      if (!a) return problem(res, 404, 'NOT_FOUND', `approval "${params.id}" not found`);
      json(res, 200, a);
    })
    .add('GET', '/v1/approvals/:id/record', async ({ req, res, params }) => {
      if (!user(req, res)) return;
      const a = approvals.get(params.id!);
      if (!a) return problem(res, 404, 'NOT_FOUND', `approval "${params.id}" not found`);
      // A record as the API shapes it; the words come from the fake approval, markup included.
      json(res, 200, {
        approvalId: a.id,
        generatedAt: T0,
        answers: { who: `agent ${a.agent}`, approvalNeeded: `granted directly by ${a.requestedBy}`, approvedBy: `granted by ${a.decidedBy} (reason: ${a.reason})`, scopeKept: 'all 1 use stayed inside the scope', happened: '1 session' },
        agent: { id: a.agentId, name: a.agent, owner: null },
        requested: { by: a.requestedBy, at: a.createdAt, client: '127.0.0.1:40000', method: null, path: null, command: null },
        policy: { needed: false, rule: null, policyHash: null, policyOrigin: null, ruleText: null },
        decisions: [{ event: 'approval.granted', actor: a.decidedBy, at: a.createdAt, reason: a.reason, ttlSeconds: a.ttlSeconds, expiresAt: a.expiresAt, auditId: 1 }],
        approval: a,
        scope: { approved: a.scope, state: a.state, window: { from: a.decidedAt, until: T0 } },
        conformance: {
          verdict: 'inside-scope',
          used: 1,
          outside: 1,
          refused: 1,
          attempts: [{ at: T0, source: '127.0.0.1:40001', method: 'GET', path: '/x', stream: 'exec', command: ['id'], statusCode: 403, outcome: 'not-approved', approvalId: 'apr_other', sessionId: null, relation: 'other-approval', inScope: false, refused: true, why: 'outside the scope: command ["id"] is not in the approved commands', auditId: 2 }],
        },
        sessions: [],
      });
    })
    .add('GET', '/v1/approvals/:id/evidence', async ({ req, res, params }) => {
      if (!user(req, res)) return;
      res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Content-Disposition': `attachment; filename="${params.id}-evidence.tar"` });
      res.end(EVIDENCE);
    })
    .add('GET', '/v1/sessions', async ({ req, res, query }) => {
      if (!user(req, res)) return;
      json(res, 200, { items: query.get('approval') === SESSION.approvalId ? [SESSION] : [] });
    })
    .add('GET', '/v1/sessions/:id', async ({ req, res, params }) => {
      if (!user(req, res)) return;
      if (params.id !== SESSION.id) return problem(res, 404, 'NOT_FOUND', 'no such session');
      json(res, 200, SESSION);
    })
    .add('GET', '/v1/sessions/:id/recording', async ({ req, res, query }) => {
      if (!user(req, res)) return;
      if (query.has('format') && query.get('format') !== 'v2') return problem(res, 400, 'INVALID_QUERY', '"format" must be v2 or v3 (asciicast version)');
      res.writeHead(200, { 'Content-Type': 'application/x-asciicast; charset=utf-8' });
      res.end(CAST);
    })
    .add('GET', '/v1/sessions/:id/raw', async ({ req, res }) => {
      if (!user(req, res)) return;
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      res.end(Buffer.from([0, 1, 2]));
    });
  decide('approve');
  decide('deny');
  decide('revoke');

  app.use((req, res) => problem(res, 404, 'NOT_FOUND', `no route ${req.path}`));
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    approvals,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('web UI in Chromium against a fake /v1', () => {
  let fake: Awaited<ReturnType<typeof startFake>>;
  let browser: Awaited<ReturnType<typeof launch>>;

  beforeAll(async () => {
    [fake, browser] = await Promise.all([startFake(), launch()]);
  });
  afterAll(async () => {
    await browser?.close();
    await fake?.close();
  });

  it('sign-in: refuses an agent token without sending it, shows a clear 401, never puts the token in a URL', async () => {
    const { page, problems } = await watchedPage(browser.context);
    await page.goto(`${fake.url}/`);
    expect(await page.title()).toContain('Sign in');
    expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(false);
    expect(await page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(false);
    const before = fake.seen.length;
    await page.getByLabel('User token').fill('kba_agent_token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'agent token' }).waitFor();
    expect(fake.seen.slice(before).filter((s) => s.path.startsWith('/v1/'))).toEqual([]);

    await page.getByLabel('User token').fill('kbu_wrong');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert').filter({ hasText: '401' });
    await alert.waitFor();
    expect(await alert.textContent()).toBe('The bastion refused this token (401 UNAUTHENTICATED): unknown or disabled user token');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-login.png') });

    await signIn(page, fake.url, 'kbu_approver_token');
    expect(await page.locator('#who-name').textContent()).toBe('alice (approver)');
    expect(await page.evaluate(() => sessionStorage.getItem('kube-bastion.token'))).toBe('kbu_approver_token');
    // An approver lands on the pending approvals.
    await page.getByRole('heading', { name: 'Pending approvals' }).waitFor();
    expect(page.url()).toBe(`${fake.url}/#/approvals?state=pending`);
    expect(fake.seen.every((s) => !s.path.includes('kbu_') && !s.path.includes('kba_'))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('approver approves (with a TTL) and denies (reason required) from the list; the API gets the POSTs with the token', async () => {
    const { page, problems } = await watchedPage(browser.context);
    await signIn(page, fake.url, 'kbu_approver_token');
    const rows = page.locator('table.approvals tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(2);
    expect(await page.locator('tr[data-id="apr_pending000000000001"] td').nth(3).textContent()).toContain('exec web-0 -c app -n demo');
    // The command rather than a count, and that nobody waits on the second one.
    expect(await page.locator('tr[data-id="apr_pending000000000002"] td').nth(3).textContent()).toContain("exec db-0 -c pg -n demo -- psql -c 'select 1'");
    expect(await page.locator('tr[data-id="apr_pending000000000002"] td').nth(1).textContent()).toMatch(/^pending nobody waiting since /);
    expect(await page.locator('tr[data-id="apr_pending000000000001"] td').nth(1).textContent()).toBe('pending');
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-approvals.png'), fullPage: true });

    // Approve with a TTL of 10 minutes.
    await page.getByRole('button', { name: 'Approve apr_pending000000000001' }).click();
    const dialog = page.getByRole('dialog', { name: 'Approve apr_pending000000000001?' });
    await dialog.waitFor();
    await dialog.getByLabel('Valid for (optional)').fill('10x');
    await dialog.getByRole('button', { name: 'Approve' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'Valid for' }).waitFor();
    await dialog.getByLabel('Valid for (optional)').fill('10m');
    await dialog.getByLabel('Reason (optional)').fill('ok for INC-4211');
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-approve-dialog.png') });
    await dialog.getByRole('button', { name: 'Approve' }).click();
    await page.locator('#flash').filter({ hasText: 'apr_pending000000000001 approved' }).waitFor();
    const approve = fake.seen.find((s) => s.method === 'POST' && s.path === '/v1/approvals/apr_pending000000000001/approve');
    expect(approve).toMatchObject({ auth: 'Bearer kbu_approver_token' });
    expect(JSON.parse(approve!.body)).toEqual({ ttlSeconds: 600, reason: 'ok for INC-4211' });
    // The list refreshes: only the other pending approval is left.
    await page.locator('tr[data-id="apr_pending000000000001"]').waitFor({ state: 'detached' });

    // Keyboard: Escape closes a dialog without deciding, and focus goes back to its button.
    await page.getByRole('button', { name: 'Approve apr_pending000000000002' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    expect(await page.getByRole('dialog').textContent()).toContain('Nobody is waiting for this request any more');
    expect(await page.evaluate(() => (document as unknown as { activeElement: { id: string } }).activeElement.id)).toMatch(/^ttl-/);
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect(await page.evaluate(() => (document as unknown as { activeElement: { id: string } }).activeElement.id)).toBe('approve-apr_pending000000000002');
    expect(fake.seen.some((s) => s.path.endsWith('/apr_pending000000000002/approve'))).toBe(false);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-after-approve.png') });

    // Deny: the reason is required before anything is sent.
    await page.getByRole('button', { name: 'Deny apr_pending000000000002' }).click();
    const deny = page.getByRole('dialog', { name: 'Deny apr_pending000000000002?' });
    await deny.getByRole('button', { name: 'Deny' }).click();
    await deny.getByRole('alert').filter({ hasText: 'Reason' }).waitFor();
    expect(fake.seen.some((s) => s.path.endsWith('/apr_pending000000000002/deny'))).toBe(false);
    await deny.getByLabel('Reason (required)').fill('not during the freeze');
    await deny.getByRole('button', { name: 'Deny' }).click();
    await page.getByText('No pending approvals.').waitFor();
    const denied = fake.seen.find((s) => s.path === '/v1/approvals/apr_pending000000000002/deny');
    expect(denied?.auth).toBe('Bearer kbu_approver_token');
    expect(JSON.parse(denied!.body)).toEqual({ reason: 'not during the freeze' });
    expect(fake.approvals.get('apr_pending000000000002')?.state).toBe('denied');

    // Filter by state: the denied ones.
    await page.getByLabel('State').selectOption('denied');
    await page.getByRole('heading', { name: 'Denied approvals' }).waitFor();
    expect(page.url()).toBe(`${fake.url}/#/approvals?state=denied`);
    expect(await rows.count()).toBe(2);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('session view: the approval record next to the player replaying the recording; hashes; downloads with the token', async () => {
    const { page, problems } = await watchedPage(browser.context);
    await signIn(page, fake.url, 'kbu_approver_token', '#/approvals/apr_approved00000000000');
    await page.getByRole('heading', { name: 'Approval apr_approved00000000000' }).waitFor();
    // The full record, data as text (the reason holds markup that must not become elements).
    const record = page.locator('section[aria-labelledby="record-h"] dl.record').first();
    for (const text of ['agent:claude', 'user:alice', 'INC-4211: inspect <b>the</b> data volume', 'exec, attach', 'web-0', 'max sessions', '3', '15m (900 s)', 'Client10.0.4.17:40022', `Rulepod-streams-need-approval policy sha256:${'a'.repeat(12)}`]) {
      expect((await record.textContent())?.toLowerCase()).toContain(text.toLowerCase());
    }
    expect(await page.locator('main b').count()).toBe(0);
    // The review record: the five answers, the decisions, and the attempt outside the scope.
    const review = page.locator('section[aria-labelledby="review-h"]');
    const reviewText = (await review.textContent()) ?? '';
    for (const text of ['1. Who acted', 'agent claude', '3. Who decided', 'INC-4211: inspect <b>the</b> data volume', 'inside-scope', 'approval.granted', '127.0.0.1:40001', 'is not in the approved commands']) {
      expect(reviewText).toContain(text);
    }
    expect(await review.locator('table.attempts tr.outside').count()).toBe(1);
    // The decision history, one row per decision, with its author and reason.
    const decisions = page.locator('section[aria-labelledby="record-h"] table.decisions tbody tr');
    expect(await decisions.count()).toBe(1);
    expect(await decisions.first().locator('td').allTextContents()).toEqual(
      expect.arrayContaining(['approved', 'user:alice', 'INC-4211: inspect <b>the</b> data volume']),
    );
    expect(await page.getByRole('button', { name: 'Revoke' }).count()).toBe(1);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-approval.png'), fullPage: true });

    // Evidence archive: fetched with the header, saved as a file.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download evidence archive (.tar)' }).click()]);
    expect(download.suggestedFilename()).toBe('apr_approved00000000000-evidence.tar');
    const saved = await download.path();
    expect((await import('node:fs')).readFileSync(saved)).toEqual(EVIDENCE);
    expect(fake.seen.find((s) => s.path === '/v1/approvals/apr_approved00000000000/evidence')?.auth).toBe('Bearer kbu_approver_token');

    // The session, from the approval's list.
    await page.locator('table.sessions').getByRole('link', { name: SESSION.id }).click();
    await page.getByRole('heading', { name: `Session ${SESSION.id}` }).waitFor();
    await playerShows(page, 'hello from the session');
    const aside = page.locator('aside.approval-pane');
    expect(await aside.textContent()).toContain('INC-4211');
    // Next to each other: the record on the left, the player on the right, side by side.
    const left = (await aside.boundingBox())!;
    const right = (await page.locator('.ap-player, .ap-wrapper').first().boundingBox())!;
    expect(left.x + left.width).toBeLessThanOrEqual(right.x);
    expect(right.y).toBeLessThan(left.y + left.height);
    const facts = await page.locator('section.replay-pane').textContent();
    for (const text of ['completed', 'Exit code0', CAST_SHA, 'b'.repeat(64), 'Channel stdout', 'd'.repeat(64), 'data/<img src=x>.txt', '2048', 'e'.repeat(64)]) {
      expect(facts).toContain(text);
    }
    expect(await page.locator('main img').count()).toBe(0);
    await page.getByText('The replayed recording matches the recorded sha256').waitFor();
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-session.png'), fullPage: true });

    // The recording's markers are on the progress bar (the start marker; the player leaves out one at the very end).
    expect((await page.locator('.ap-marker-container .ap-tooltip').allTextContents()).join('\n')).toContain('started under approval apr_approved00000000000');
    // Play it from the start: the poster (the last screen) goes, and the session is typed out again.
    await page.locator('.ap-player').click();
    await page.waitForFunction(() => document.querySelector('.ap-term')?.textContent?.includes('exit') === false, undefined, { timeout: 5000 });
    await playerShows(page, 'exit');

    const [cast] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download recording (.cast)' }).click()]);
    expect(cast.suggestedFilename()).toBe(`${SESSION.id}.cast`);
    expect((await import('node:fs')).readFileSync(await cast.path(), 'utf8')).toBe(CAST);
    const recordingCalls = fake.seen.filter((s) => s.path.startsWith(`/v1/sessions/${SESSION.id}/recording`));
    expect(recordingCalls.map((s) => [s.path, s.auth])).toEqual([
      [`/v1/sessions/${SESSION.id}/recording?format=v2`, 'Bearer kbu_approver_token'], // the player
      [`/v1/sessions/${SESSION.id}/recording`, 'Bearer kbu_approver_token'], // the download: as recorded
    ]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('reviewer: reads, no decision buttons; a revoked token signs out with a clear 401', async () => {
    const { page, problems } = await watchedPage(browser.context);
    await signIn(page, fake.url, 'kbu_reviewer_token');
    await page.getByRole('heading', { name: 'Approvals' }).waitFor();
    expect(await page.locator('table.approvals tbody tr').count()).toBe(fake.approvals.size);
    expect(await page.locator('main button', { hasText: /Approve|Deny|Revoke/ }).count()).toBe(0);
    expect(await page.locator('table.approvals th').allTextContents()).not.toContain('Actions');
    // The token stops working (user disabled): the next call signs the tab out.
    await page.evaluate(() => sessionStorage.setItem('kube-bastion.token', 'kbu_disabled'));
    await page.evaluate(() => (location.hash = '#/approvals/apr_denied0000000000000'));
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: '401' }).waitFor();
    expect(await alert.textContent()).toContain('Not signed in (401 UNAUTHENTICATED): unknown or disabled user token');
    expect(await page.evaluate(() => sessionStorage.getItem('kube-bastion.token'))).toBeNull();
    expect(problems).toEqual([]);
    await page.close();
  });

  it('forbidden: a 403 from the API is shown as such', async () => {
    const { page, problems } = await watchedPage(browser.context);
    await signIn(page, fake.url, 'kbu_approver_token', '#/approvals/apr_approved00000000000');
    await page.getByRole('button', { name: 'Revoke' }).waitFor();
    // The role changed under the page: the server now sees a reviewer.
    await page.evaluate(() => sessionStorage.setItem('kube-bastion.token', 'kbu_reviewer_token'));
    await page.getByRole('button', { name: 'Revoke' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Revoke' }).click();
    await dialog.getByRole('alert').filter({ hasText: '403' }).waitFor();
    expect(await dialog.getByRole('alert').textContent()).toBe('Not allowed (403 FORBIDDEN): role reviewer may not do this (needs approver or admin)');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(fake.approvals.get('apr_approved00000000000')?.state).toBe('approved');
    expect(problems).toEqual([]);
    await page.close();
  });
});

// ---------------------------------------------------------------------------------------------
// 2. Wired into a real bastion

describe('web UI served by a real bastion', () => {
  let b: TestBastion;
  let approverToken: string;
  let browser: Awaited<ReturnType<typeof launch>> | undefined;
  /** The approval the first test decided, whose session the second replays. */
  let decidedId: string | undefined;

  beforeAll(async () => {
    b = await startTestBastion({ extraArgs: ['--hold-timeout', '20'] });
    approverToken = (await b.bastion.store.users.createUser('alice', 'approver')).token;
    browser = await launch();
  });
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
  });

  it('an approver approves a held kubectl exec from the page (the list refreshes itself); the command then runs', async () => {
    const { page, problems } = await watchedPage(browser!.context);
    await signIn(page, b.bastion.controlUrl, approverToken);
    await page.getByRole('heading', { name: 'Pending approvals' }).waitFor();

    const child = spawn(kubectlPath(33), ['--kubeconfig', b.agentKubeconfig, 'exec', '-n', 'demo', 'web-0', '--', 'sh', '-c', 'echo hello from the session'], {
      env: { PATH: process.env.PATH ?? '', HOME: freshHome() },
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      const approve = page.getByRole('button', { name: /^Approve apr_/ });
      await approve.waitFor({ timeout: 15_000 });
      const id = ((await approve.getAttribute('aria-label')) ?? '').replace('Approve ', '');
      await approve.click();
      await page.getByRole('dialog').getByRole('button', { name: 'Approve' }).click();
      await page.locator('#flash').filter({ hasText: `${id} approved` }).waitFor();
      expect(await exited).toBe(0);
      expect(stdout).toBe('hello from the session\n');
      expect(await b.bastion.approvals.get(id)).toMatchObject({ state: 'approved', decidedBy: 'user:alice' });
      decidedId = id;
      expect(problems).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await page.close();
    }
  });

  it('a reviewer replays that session next to its approval', async () => {
    expect(decidedId).toBeDefined();
    const reviewerToken = (await b.bastion.store.users.createUser('rita', 'reviewer')).token;
    const { page, problems } = await watchedPage(browser!.context);
    await signIn(page, b.bastion.controlUrl, reviewerToken, `#/approvals/${decidedId}`);
    // The real review record: who acted and who decided, from the bastion's own rows.
    const review = page.locator('section[aria-labelledby="review-h"] dl.record');
    await review.waitFor();
    expect(await review.textContent()).toContain(`approved by user:alice`);
    await page.locator('table.sessions a').first().click();
    await page.getByRole('heading', { name: /^Session ses_/ }).waitFor();
    await playerShows(page, 'hello from the session');
    expect(await page.locator('aside.approval-pane').textContent()).toContain(decidedId);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'kb-webui-real-session.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });
});

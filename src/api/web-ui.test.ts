// The web UI's routes at the HTTP level: content types, caching and security headers, the player's
// files byte for byte from the installed package, and static checks on the page's own files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../observability/log.js';
import type { ApprovalService } from '../model/approval.js';
import { APPROVAL_STATES, DECIDER_ROLES } from '../model/vocabulary.js';
import { ControlEndpoint, type ControlDeps } from './control-endpoint.js';
import { WEB_UI_CSP, WEB_UI_PATHS, defaultWebDir, webUiFiles, webUiRoutes } from './web-ui.js';

/** A ControlEndpoint over fakes (the UI is part of every endpoint). */
function endpoint(): ControlEndpoint {
  const unused = new Proxy(
    {},
    {
      get: (_, prop) => {
        if (prop === 'then') return undefined;
        return () => {
          throw new Error(`fake dependency: ${String(prop)} called`);
        };
      },
    },
  );
  const deps: ControlDeps = {
    agents: unused as ControlDeps['agents'],
    users: unused as ControlDeps['users'],
    audit: unused as ControlDeps['audit'],
    policyVersions: unused as ControlDeps['policyVersions'],
    approvals: unused as ApprovalService,
    sessions: unused as never,
    recordingsDir: '',
    signingKey: unused as never,
    verifyAudit: (unused as { verifyAudit: ControlDeps['verifyAudit'] }).verifyAudit,
    currentPolicy: () => ({ hash: '0'.repeat(64), origin: 'builtin:default' }),
    metrics: { contentType: 'text/plain', render: async () => '' },
    agentKubeconfig: () => '',
    log: silentLogger(),
  };
  return new ControlEndpoint(deps, { host: '127.0.0.1', port: 0 });
}

const require = createRequire(import.meta.url);
const playerJs = readFileSync(require.resolve('asciinema-player/dist/bundle/asciinema-player.min.js'));
const playerCss = readFileSync(require.resolve('asciinema-player/dist/bundle/asciinema-player.css'));
const web = (name: string): string => readFileSync(join(defaultWebDir(), name), 'utf8');

let control: ControlEndpoint;
beforeAll(async () => {
  control = endpoint();
  await control.listen();
});
afterAll(async () => {
  await control?.close();
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const res = await fetch(`${control.url}${path}`, init);
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

describe('web UI routes', () => {
  it.each([
    ['/', 'text/html; charset=utf-8'],
    ['/ui/app.js', 'text/javascript; charset=utf-8'],
    ['/ui/vocabulary.js', 'text/javascript; charset=utf-8'],
    ['/ui/app.css', 'text/css; charset=utf-8'],
    ['/ui/vendor/asciinema-player.min.js', 'text/javascript; charset=utf-8'],
    ['/ui/vendor/asciinema-player.css', 'text/css; charset=utf-8'],
  ])('GET %s: %s, no-store, the security headers, no authentication needed', async (path, type) => {
    const res = await get(path);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(type);
    expect(res.headers.get('content-length')).toBe(String(res.body.length));
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-security-policy')).toBe(WEB_UI_CSP);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('the CSP: same-origin only, WebAssembly for the player, no inline script or style, no framing', () => {
    const directives = Object.fromEntries(WEB_UI_CSP.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name!, values]));
    expect(directives['default-src']).toEqual(["'none'"]);
    expect(directives['script-src']).toEqual(["'self'", "'wasm-unsafe-eval'"]);
    expect(directives['style-src']).toEqual(["'self'"]);
    expect(directives['connect-src']).toEqual(["'self'"]);
    expect(directives['frame-ancestors']).toEqual(["'none'"]);
    expect(directives['base-uri']).toEqual(["'none'"]);
    // No form ever submits: a script failure cannot turn the sign-in form into a GET with the token in the URL.
    expect(directives['form-action']).toEqual(["'none'"]);
    expect(WEB_UI_CSP).not.toMatch(/'unsafe-inline'|'unsafe-eval'|\*/);
  });

  it('serves the installed asciinema-player bundle byte for byte', async () => {
    expect((await get('/ui/vendor/asciinema-player.min.js')).body.equals(playerJs)).toBe(true);
    expect((await get('/ui/vendor/asciinema-player.css')).body.equals(playerCss)).toBe(true);
    expect(playerJs.toString('utf8', 0, 400)).toContain('var AsciinemaPlayer=');
    const version = (JSON.parse(readFileSync(join(require.resolve('asciinema-player/dist/bundle/asciinema-player.css'), '../../../package.json'), 'utf8')) as { version: string }).version;
    expect(version).toMatch(/^3\./);
  });

  it("serves the model's lists to the page as an ES module, restating none", async () => {
    const text = (await get('/ui/vocabulary.js')).body.toString();
    const dir = mkdtempSync(join(tmpdir(), 'kb-webui-vocab-'));
    try {
      writeFileSync(join(dir, 'vocabulary.mjs'), text);
      const mod = (await import(join(dir, 'vocabulary.mjs'))) as Record<string, unknown>;
      expect(mod['APPROVAL_STATES']).toEqual([...APPROVAL_STATES]);
      expect(mod['DECIDER_ROLES']).toEqual([...DECIDER_ROLES]);
      expect(Object.isFrozen(mod['APPROVAL_STATES'])).toBe(true);
      // web/vocabulary.d.ts types exactly what is served.
      const typed = [...web('vocabulary.d.ts').matchAll(/export \{([^}]+)\}/g)].flatMap((m) => m[1]!.split(',').map((n) => n.trim()));
      expect(Object.keys(mod).sort()).toEqual(typed.sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const app = web('app.js');
    expect(app).toContain("from './vocabulary.js'");
    expect(app).not.toMatch(/'pending',\s*'approved'/);
  });

  it('serves the web/ files as they are', async () => {
    expect((await get('/')).body.toString()).toBe(web('index.html'));
    expect((await get('/ui/app.js')).body.toString()).toBe(web('app.js'));
    expect((await get('/ui/app.css')).body.toString()).toBe(web('app.css'));
  });

  it('GET only; other paths under /ui are 404 (no directory serving)', async () => {
    expect((await get('/', { method: 'POST' })).status).toBe(405);
    for (const path of ['/ui/', '/ui/index.html', '/ui/vendor/asciinema-player.js', '/ui/../package.json', '/ui/vendor/..%2F..%2Fpackage.json', '/index.html']) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      expect(res.body.toString()).not.toContain('"version"');
    }
  });

  it('registers exactly its GET routes, none under /v1', () => {
    expect(webUiRoutes().list()).toEqual(WEB_UI_PATHS.map((pattern) => ({ method: 'GET', pattern })));
    expect(WEB_UI_PATHS.some((p) => p.startsWith('/v1'))).toBe(false);
  });

  it('a missing file fails the registration, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kb-webui-'));
    try {
      writeFileSync(join(dir, 'index.html'), '<!doctype html>');
      expect(() => webUiRoutes({ webDir: dir })).toThrow(/web UI: cannot read .*app\.js for \/ui\/app\.js/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the page files', () => {
  it('index.html loads only the served paths, with no inline script, style or handler', () => {
    const html = web('index.html');
    const refs = [...html.matchAll(/\b(?:src|href)="([^"#][^"]*)"/g)].map((m) => m[1]!).filter((r) => !r.startsWith('data:'));
    expect(refs.sort()).toEqual(webUiFiles().map((f) => f.path).filter((p) => p !== '/').sort());
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
  });

  it('app.js never hands data to an HTML parser or eval, and keeps the token out of URLs', () => {
    const js = web('app.js');
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['"`]/);
    expect(js).not.toMatch(/localStorage|document\.cookie/);
    // The token is read in one place and only ever sent as the Authorization header.
    expect(js.match(/getToken\(\)/g)?.length).toBeGreaterThan(0);
    expect(js).toContain('Authorization: `Bearer ${token}`');
    expect(js).not.toMatch(/[?&]token=/);
  });
});

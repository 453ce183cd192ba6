// The reviewers' and approvers' web UI: a static page (web/index.html, web/app.js, web/app.css; no
// build step) plus asciinema-player from node_modules, served outside /v1 without authentication
// (the files hold no data; every /v1 call the page makes sends the user's bearer token).
//
// Each file is one exact route (no directory serving). Files are read once, when the routes are
// created: a missing file is a packaging fault and fails the start, not a request.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';
import type { MountedRoute } from './mount.js';

/**
 * The page's policy. asciinema-player 3.x compiles its terminal emulator from WebAssembly bytes
 * inlined in its bundle (WebAssembly.instantiate on an ArrayBuffer: `'wasm-unsafe-eval'`, no
 * worker, no fetch of a .wasm file) and styles its elements through the CSSOM (element.style, not
 * style attributes or <style> elements), so neither `'unsafe-inline'` nor `'unsafe-eval'` is
 * needed. The e2e test fails on any CSP violation report.
 */
export const WEB_UI_CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const WEB_UI_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-store',
  'Content-Security-Policy': WEB_UI_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const HTML = 'text/html; charset=utf-8';
const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** The folder holding index.html, app.js and app.css: `web/` at the package root (src/api/ and dist/api/ are both two levels down). */
export function defaultWebDir(): string {
  return fileURLToPath(new URL('../../web/', import.meta.url));
}

/** The player's bundle files, resolved through the package's exports (not a path into node_modules). */
export function playerAssetPaths(): { js: string; css: string } {
  const require = createRequire(import.meta.url);
  return {
    js: require.resolve('asciinema-player/dist/bundle/asciinema-player.min.js'),
    css: require.resolve('asciinema-player/dist/bundle/asciinema-player.css'),
  };
}

/** The UI's routes (all GET, none under /v1): for code that lists the API's routes and must leave these out. */
export const WEB_UI_PATHS = [
  '/',
  '/ui/app.js',
  '/ui/app.css',
  '/ui/vendor/asciinema-player.min.js',
  '/ui/vendor/asciinema-player.css',
] as const;
export type WebUiPath = (typeof WEB_UI_PATHS)[number];

/** Each route's Content-Type and its file (or, for generated ones, its text). */
export function webUiFiles(webDir = defaultWebDir()): Array<{ path: WebUiPath; type: string } & ({ file: string } | { text: () => string })> {
  const player = playerAssetPaths();
  const files: Record<WebUiPath, { type: string } & ({ file: string } | { text: () => string })> = {
    '/': { file: join(webDir, 'index.html'), type: HTML },
    '/ui/app.js': { file: join(webDir, 'app.js'), type: JS },
    '/ui/app.css': { file: join(webDir, 'app.css'), type: CSS },
    '/ui/vendor/asciinema-player.min.js': { file: player.js, type: JS },
    '/ui/vendor/asciinema-player.css': { file: player.css, type: CSS },
  };
  return WEB_UI_PATHS.map((path) => ({ path, ...files[path] }));
}

/** GET routes for the UI's page, scripts, style sheet and the player's two files. */
export function webUiRoutes(opts: { webDir?: string } = {}): { router: Router; list(): MountedRoute[] } {
  const router = Router({ caseSensitive: true });
  for (const entry of webUiFiles(opts.webDir)) {
    let body: Buffer;
    if ('text' in entry) body = Buffer.from(entry.text());
    else {
      try {
        body = readFileSync(entry.file);
      } catch (err) {
        throw new Error(`web UI: cannot read ${entry.file} for ${entry.path}: ${(err as Error).message}`, { cause: err });
      }
    }
    router.get(entry.path, (_req, res) => {
      res.writeHead(200, { ...WEB_UI_HEADERS, 'Content-Type': entry.type, 'Content-Length': body.length });
      res.end(body);
    });
  }
  return { router, list: () => WEB_UI_PATHS.map((pattern) => ({ method: 'GET', pattern })) };
}

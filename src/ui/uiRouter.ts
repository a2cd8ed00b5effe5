// The visualizer's pages and scripts under /ui. They hold no data: the browser reads everything
// through /api with the bearer token the operator pastes (kept in sessionStorage), so these
// paths need no authentication. Everything is served from this process (elkjs from the
// installed package): the page works with no network beyond this server, which the CSP enforces.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';

const STATIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'static');

export function elkBundlePath(): string {
  return createRequire(import.meta.url).resolve('elkjs/lib/elk.bundled.js');
}

// nothing but this origin; elk.bundled.js runs its layout in-page (no worker, no eval)
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function uiRouter(): express.Router {
  const router = express.Router();
  router.use((_req, res, next) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  });
  const page: express.RequestHandler = (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(path.join(STATIC_DIR, 'index.html'));
  };
  router.get('/', page);
  router.get('/deployments/:project/:env', page);
  router.get('/vendor/elk.bundled.js', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.type('text/javascript').sendFile(elkBundlePath());
  });
  router.use('/static', express.static(STATIC_DIR, { index: false, fallthrough: true, maxAge: 0 }));
  return router;
}

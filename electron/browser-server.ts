/**
 * Browser mode: the studio as a local web app. One HTTP server on 127.0.0.1 (random port unless
 * given) with a per-run random token serves
 *
 * - the built renderer from `dist/renderer/` (index.html with a strict CSP);
 * - the API: `POST /api/<method>` with a JSON body, answering the ApiResponse envelope;
 * - events: the WebSocket `/api/events` (one JSON StudioEvent per text message);
 * - stored files: `GET /files/<sha256>`, as a download named `<name>` with `?download=<name>`
 *   (page exports).
 *
 * Everything needs the token: `Authorization: Bearer <token>`, or the `msp_token` cookie that
 * `/?token=<token>` sets (HttpOnly, SameSite=Strict) before redirecting to `/`. Requests whose
 * Host is not this server, or whose Origin is another site, are refused (DNS rebinding, CSRF).
 *
 * @example
 * const server = await startBrowserServer({ dataDir });
 * console.log(server.url); // http://127.0.0.1:41234/?token=...
 * await server.close();
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import type { ApiErrorCode, ApiResponse } from './api/contract.js';
import { EVENTS_PATH } from './api/channels.js';
import { isFileHash } from './services/file-store.js';
import { StudioService } from './services/studio-service.js';
import type { StudioServiceOptions } from './services/studio-service.js';

export interface BrowserServerOptions {
  dataDir: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default: a fresh random token. */
  token?: string;
  /** The built renderer (default: dist/renderer of this checkout). */
  rendererDir?: string;
  /**
   * Other page origins allowed to call the API, e.g. a Vite dev server that proxies `/api` here
   * (`http://localhost:5173`). Default: none.
   */
  allowedOrigins?: readonly string[];
  /** Passed to the studio service (e.g. a render runner for tests). */
  service?: Partial<Pick<StudioServiceOptions, 'runner' | 'env' | 'version'>>;
}

export interface BrowserServer {
  /** The address to open: `http://127.0.0.1:<port>/?token=<token>`. */
  url: string;
  origin: string;
  port: number;
  token: string;
  service: StudioService;
  close(): Promise<void>;
}

/** The most a JSON API body may hold (a 50 MB file as base64, plus the envelope). */
const MAX_BODY_BYTES = 72 * 1024 * 1024;
const COOKIE = 'msp_token';
const HOST = '127.0.0.1';

const STATUS: Record<ApiErrorCode, number> = {
  invalid_input: 400,
  not_found: 404,
  conflict: 409,
  unknown_method: 404,
  unauthorized: 401,
  forbidden: 403,
  internal: 500,
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
};

/** `dist/renderer/` of this checkout, from the sources or from the built dist/electron/. */
export function defaultRendererDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const inDist = here.split(sep).includes('dist');
  return inDist ? resolve(here, '..', 'renderer') : resolve(here, '..', 'dist', 'renderer');
}

/** The page's Content-Security-Policy: own scripts only, API and events on this origin. */
export function contentSecurityPolicy(origin: string): string {
  const ws = origin.replace(/^http/, 'ws');
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    `connect-src 'self' ${ws}`,
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Starts the studio service and the server. */
export async function startBrowserServer(options: BrowserServerOptions): Promise<BrowserServer> {
  const token = options.token ?? randomBytes(24).toString('base64url');
  const rendererDir = options.rendererDir ?? defaultRendererDir();
  let origin = '';
  const service = await StudioService.open({
    dataDir: options.dataDir,
    mode: 'browser',
    fileUrl: (hash) => `/files/${hash}`,
    ...options.service,
  });

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, failure('internal', (err as Error).message));
      else res.destroy();
    });
  });
  const sockets = new WebSocketServer({ noServer: true, maxPayload: 4096 });

  // -------------------------------------------------------------------------------------------
  // Checks

  const tokenMatches = (candidate: string | undefined): boolean => {
    if (candidate === undefined) return false;
    const a = Buffer.from(candidate);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  const authorized = (req: IncomingMessage, url: URL, allowQuery: boolean): boolean => {
    const header = req.headers.authorization;
    if (header?.startsWith('Bearer ') && tokenMatches(header.slice(7).trim())) return true;
    if (tokenMatches(cookies(req)[COOKIE])) return true;
    return allowQuery && tokenMatches(url.searchParams.get('token') ?? undefined);
  };

  /** Host must be this server (DNS rebinding); an Origin, when sent, must be this server too. */
  const sameSite = (req: IncomingMessage): boolean => {
    const port = new URL(origin).port;
    const host = req.headers.host ?? '';
    const proxied = (options.allowedOrigins ?? []).some((o) => URL.canParse(o) && new URL(o).host === host);
    if (host !== `${HOST}:${port}` && host !== `localhost:${port}` && !proxied) return false;
    const from = req.headers.origin;
    return (
      from === undefined ||
      from === origin ||
      from === `http://localhost:${port}` ||
      (options.allowedOrigins ?? []).includes(from)
    );
  };

  // -------------------------------------------------------------------------------------------
  // Routes

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    if (!sameSite(req))
      return sendJson(res, 403, failure('forbidden', 'requests must come from the studio page'));

    // The entry link: set the cookie, then drop the token from the address bar.
    if (req.method === 'GET' && url.pathname === '/' && url.searchParams.has('token')) {
      if (!tokenMatches(url.searchParams.get('token') ?? undefined)) return sendUnauthorized(res, false);
      res.setHeader('Set-Cookie', `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`);
      res.writeHead(303, { Location: '/' }).end();
      return;
    }

    if (url.pathname.startsWith('/api/')) {
      if (!authorized(req, url, false)) return sendUnauthorized(res, true);
      if (req.method !== 'POST') {
        res.setHeader('Allow', 'POST');
        return sendJson(res, 405, failure('invalid_input', 'API methods are called with POST'));
      }
      return api(req, res, decodeURIComponent(url.pathname.slice('/api/'.length)));
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendJson(res, 405, failure('invalid_input', `${req.method ?? ''} is not allowed here`));
    }
    if (!authorized(req, url, false)) return sendUnauthorized(res, false);
    if (url.pathname.startsWith('/files/'))
      return file(
        res,
        url.pathname.slice('/files/'.length),
        req.method === 'HEAD',
        url.searchParams.get('download'),
      );
    return staticFile(res, url.pathname, req.method === 'HEAD');
  }

  async function api(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const type = req.headers['content-type'] ?? '';
    const body = await readBody(req, MAX_BODY_BYTES).catch((err: Error) => err);
    if (body instanceof Error) return sendJson(res, 413, failure('invalid_input', body.message));
    let payload: unknown;
    if (body.length > 0) {
      if (!type.toLowerCase().startsWith('application/json')) {
        return sendJson(res, 415, failure('invalid_input', 'send the payload as application/json'));
      }
      try {
        payload = JSON.parse(body.toString('utf8'));
      } catch (err) {
        return sendJson(
          res,
          400,
          failure('invalid_input', `the body is not valid JSON (${(err as Error).message})`),
        );
      }
    }
    const answer = await service.dispatch(method, payload);
    sendJson(res, answer.ok ? 200 : STATUS[answer.error.code], answer);
  }

  async function file(
    res: ServerResponse,
    hash: string,
    head: boolean,
    downloadName: string | null,
  ): Promise<void> {
    if (!isFileHash(hash)) return sendJson(res, 404, failure('not_found', 'no such file'));
    const meta = service.db.files.get(hash);
    if (!meta || !service.store.has(hash))
      return sendJson(res, 404, failure('not_found', `file ${hash} does not exist`));
    res.writeHead(200, {
      'Content-Type': meta.mediaType,
      'Content-Length': meta.size,
      'Cache-Control': 'private, max-age=31536000, immutable',
      'Content-Security-Policy': "default-src 'none'; sandbox",
      ...(downloadName !== null ? { 'Content-Disposition': attachment(downloadName) } : {}),
    });
    if (head) return void res.end();
    createReadStream(service.store.pathOf(hash))
      .on('error', () => res.destroy())
      .pipe(res);
  }

  async function staticFile(res: ServerResponse, pathname: string, head: boolean): Promise<void> {
    const root = resolve(rendererDir);
    let relative: string;
    try {
      relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
    } catch {
      return sendJson(res, 400, failure('invalid_input', 'malformed path'));
    }
    let path = resolve(root, relative);
    if (path !== root && !path.startsWith(root + sep))
      return sendJson(res, 404, failure('not_found', 'not found'));
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) {
      // Client-side routes get the app; missing assets are 404s.
      if (extname(pathname) !== '') return sendJson(res, 404, failure('not_found', `${pathname} not found`));
      path = join(root, 'index.html');
    }
    if (path === join(root, 'index.html')) {
      const html = existsSync(path) ? await readFile(path) : Buffer.from(placeholderPage(rendererDir));
      res.writeHead(200, {
        'Content-Type': CONTENT_TYPES['.html'],
        'Content-Length': html.byteLength,
        'Cache-Control': 'no-store',
        'Content-Security-Policy': contentSecurityPolicy(origin),
        'X-Frame-Options': 'DENY',
      });
      return void res.end(head ? undefined : html);
    }
    const size = (await stat(path)).size;
    res.writeHead(200, {
      'Content-Type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': size,
      'Cache-Control': 'no-cache',
    });
    if (head) return void res.end();
    createReadStream(path)
      .on('error', () => res.destroy())
      .pipe(res);
  }

  // -------------------------------------------------------------------------------------------
  // Events

  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', origin);
    const refuse = (status: number, text: string) => {
      socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (url.pathname !== EVENTS_PATH) return refuse(404, 'Not Found');
    if (!sameSite(req)) return refuse(403, 'Forbidden');
    if (!authorized(req, url, true)) return refuse(401, 'Unauthorized');
    sockets.handleUpgrade(req, socket, head, (ws) => {
      const off = service.onEvent((event) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
      });
      ws.on('close', off);
      ws.on('error', off);
      ws.on('message', () => undefined); // the channel is one-way; pings are answered by ws itself
    });
  });

  // -------------------------------------------------------------------------------------------
  // Start and stop

  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off('error', reject);
      resolvePromise();
    });
  }).catch(async (err: NodeJS.ErrnoException) => {
    await service.close();
    if (err.code === 'EADDRINUSE')
      throw new Error(`port ${options.port} is in use; pick another with --port`);
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  origin = `http://${HOST}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url: `${origin}/?token=${token}`,
    origin,
    port,
    token,
    service,
    close: () => {
      closing ??= (async () => {
        for (const ws of sockets.clients) ws.terminate();
        sockets.close();
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        await service.close();
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function failure(code: ApiErrorCode, message: string): ApiResponse<never> {
  return { ok: false, error: { code, message } };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function sendUnauthorized(res: ServerResponse, api: boolean): void {
  if (api)
    return sendJson(
      res,
      401,
      failure('unauthorized', 'missing or wrong token; open the URL that MSP Studio printed'),
    );
  const html =
    '<!doctype html><meta charset="utf-8"><title>MSP Studio</title>' +
    '<p>Open MSP Studio with the address it printed when it started (it ends in <code>?token=...</code>).</p>';
  res.writeHead(401, {
    'Content-Type': CONTENT_TYPES['.html'],
    'Content-Length': Buffer.byteLength(html),
    'Content-Security-Policy': "default-src 'none'",
  });
  res.end(html);
}

/**
 * A `Content-Disposition: attachment` header value for a download name: an ASCII fallback and the
 * UTF-8 name (RFC 6266); separators, quotes and control characters are replaced.
 */
export function attachment(name: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being replaced
  const clean = name.replace(/[\u0000-\u001f\u007f"\\/:*?<>|]/g, '_').slice(0, 200) || 'download';
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(clean)}`;
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > limit) {
        // Stop collecting, let the rest drain, and answer once (the caller sends 413).
        req.removeAllListeners('data');
        req.resume();
        reject(new Error(`the request body is larger than ${Math.round(limit / 1024 / 1024)} MB`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolvePromise(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function placeholderPage(rendererDir: string): string {
  const escaped = rendererDir.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return (
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>MSP Studio</title>' +
    '<body style="font: 14px sans-serif; background: #2b2b2b; color: #ddd; padding: 2em">' +
    '<h1>MSP Studio</h1><p>The backend is running, but the user interface is not built: ' +
    `${escaped} has no index.html. Run <code>npm run build</code> and reload.</p></body></html>`
  );
}

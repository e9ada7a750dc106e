/**
 * The Electron main process: one locked-down window, the application menu, and the IPC bridge to
 * the studio service.
 *
 * - The page is served from the custom scheme `msp-app://studio/` (dist/renderer/, with a strict
 *   CSP header); stored files from `/files/<sha256>` on the same origin (as in browser mode), so
 *   canvases that draw renders stay exportable (no cross-origin taint).
 * - The window runs with contextIsolation, sandbox, no nodeIntegration, no navigation away from
 *   the app, no new windows and no permissions.
 * - One IPC channel (`msp:invoke`) carries every API call; its handler checks that the sender is
 *   the app's own top-level page, and the service validates the method (allow-list) and payload.
 *   Events go to the page on `msp:event`.
 * - A single-instance lock: starting a second copy focuses the first.
 * - Native dialogs (where to save an export, which model folder to import) are the service's host
 *   hooks, so file paths come from the main process, never from the page.
 *
 * Started by `node dist/electron/cli.js start` as `electron dist/electron/main/main.js --data-dir DIR`.
 */
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { app, BrowserWindow, dialog, ipcMain, Menu, protocol, session, shell } from 'electron';
import type { IpcMainInvokeEvent, MenuItemConstructorOptions } from 'electron';
import type { ApiResponse, AppCommand, StudioEvent } from '../api/contract.js';
import { EVENT_CHANNEL, INVOKE_CHANNEL } from '../api/channels.js';
import { defaultDataDir } from '../data-dir.js';
import { isFileHash } from '../services/file-store.js';
import { StudioService } from '../services/studio-service.js';
import type { StudioHost } from '../services/studio-service.js';

const APP_SCHEME = 'msp-app';
const APP_ORIGIN = `${APP_SCHEME}://studio`;

/** The page's Content-Security-Policy. */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

const here = fileURLToPath(new URL('.', import.meta.url));
/** dist/electron/main/ -> dist/renderer/ */
const rendererDir = resolve(here, '..', '..', 'renderer');
/** The sandboxed preload (compiled as a CommonJS script, see preload/package.json). */
const preloadPath = join(here, '..', 'preload', 'preload.js');

function argValue(name: string): string | undefined {
  const args = process.argv;
  const i = args.indexOf(name);
  if (i >= 0 && i + 1 < args.length) return args[i + 1];
  const inline = args.find((a) => a.startsWith(`${name}=`));
  return inline?.slice(name.length + 1);
}

const dataDir = resolve(argValue('--data-dir') ?? defaultDataDir());
let service: StudioService | undefined;
let mainWindow: BrowserWindow | undefined;

// Schemes must be registered before the app is ready.
protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  app.whenReady().then(start, (err: unknown) => fatal(err));
}

async function start(): Promise<void> {
  try {
    service = await StudioService.open({
      dataDir,
      mode: 'electron',
      fileUrl: (hash) => `/files/${hash}`,
      version: app.getVersion(),
      host: dialogs,
    });
  } catch (err) {
    fatal(err);
    return;
  }
  const studio = service;

  // No permission (camera, notifications, ...) is ever granted.
  session.defaultSession.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  session.defaultSession.setPermissionCheckHandler(() => false);

  protocol.handle(APP_SCHEME, (request) => {
    const { pathname } = new URL(request.url);
    return pathname.startsWith('/files/') ? serveFile(studio, pathname) : serveRenderer(pathname);
  });

  ipcMain.handle(
    INVOKE_CHANNEL,
    async (event, method: unknown, payload: unknown): Promise<ApiResponse<unknown>> => {
      if (!trustedSender(event)) {
        return { ok: false, error: { code: 'forbidden', message: 'this page may not call MSP Studio' } };
      }
      return studio.dispatch(method, payload);
    },
  );
  studio.onEvent((event) => send(event));

  Menu.setApplicationMenu(buildMenu());
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
}

/**
 * The service's host hooks: native dialogs, modal to the window. Paths reach the service only from
 * here, never from the page.
 */
const dialogs: StudioHost = {
  async chooseSavePath({ title, defaultName, filters }) {
    const options = { title, defaultPath: join(app.getPath('documents'), defaultName), filters };
    const answer = mainWindow
      ? await dialog.showSaveDialog(mainWindow, options)
      : await dialog.showSaveDialog(options);
    return answer.canceled || !answer.filePath ? null : answer.filePath;
  },
  async chooseFolder({ title }) {
    const options = { title, properties: ['openDirectory' as const] };
    const answer = mainWindow
      ? await dialog.showOpenDialog(mainWindow, options)
      : await dialog.showOpenDialog(options);
    return answer.canceled ? null : (answer.filePaths[0] ?? null);
  },
  showItemInFolder(path) {
    shell.showItemInFolder(path);
  },
};

function createWindow(): void {
  const win = new BrowserWindow({
    width: 1440,
    height: 900,
    minWidth: 960,
    minHeight: 600,
    title: 'MSP Studio',
    backgroundColor: '#2b2b2b',
    show: false,
    webPreferences: {
      preload: preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  mainWindow = win;
  win.once('ready-to-show', () => win.show());
  win.on('closed', () => {
    if (mainWindow === win) mainWindow = undefined;
  });

  // The page never navigates away; links to the web open in the user's browser.
  win.webContents.on('will-navigate', (event, url) => {
    if (!url.startsWith(`${APP_ORIGIN}/`)) event.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:\/\//.test(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  win.webContents.on('will-attach-webview', (event) => event.preventDefault());

  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

/** Only the top-level frame of our own window, showing our own page, may call the API. */
function trustedSender(event: IpcMainInvokeEvent): boolean {
  const frame = event.senderFrame;
  if (!frame || frame !== event.sender.mainFrame) return false;
  if (!BrowserWindow.getAllWindows().some((w) => w.webContents === event.sender)) return false;
  try {
    return new URL(frame.url).origin === APP_ORIGIN;
  } catch {
    return false;
  }
}

function send(event: StudioEvent): void {
  for (const win of BrowserWindow.getAllWindows()) {
    if (!win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, event);
  }
}

function command(name: AppCommand): void {
  send({ type: 'app.command', command: name });
}

async function serveRenderer(pathname: string): Promise<Response> {
  const root = rendererDir;
  let relative: string;
  try {
    relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  } catch {
    return new Response('bad path', { status: 400 });
  }
  let path = resolve(root, relative || 'index.html');
  if (path !== root && !path.startsWith(root + sep)) return new Response('not found', { status: 404 });
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) {
    if (extname(pathname) !== '') return new Response('not found', { status: 404 });
    path = join(root, 'index.html'); // client-side routes
  }
  const body = await readFile(path).catch(() => undefined);
  if (!body) {
    return new Response('MSP Studio: the user interface is not built (run npm run build).', {
      status: 404,
      headers: { 'Content-Type': 'text/plain; charset=utf-8' },
    });
  }
  const headers: Record<string, string> = {
    'Content-Type': CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
    'X-Content-Type-Options': 'nosniff',
  };
  if (extname(path) === '.html') headers['Content-Security-Policy'] = CSP;
  return new Response(new Uint8Array(body), { status: 200, headers });
}

async function serveFile(studio: StudioService, pathname: string): Promise<Response> {
  const hash = pathname.slice('/files/'.length);
  if (!isFileHash(hash)) return new Response('not found', { status: 404 });
  const meta = studio.db.files.get(hash);
  if (!meta || !studio.store.has(hash)) return new Response('not found', { status: 404 });
  const bytes = await studio.store.read(hash);
  return new Response(new Uint8Array(bytes), {
    status: 200,
    headers: { 'Content-Type': meta.mediaType, 'X-Content-Type-Options': 'nosniff' },
  });
}

function buildMenu(): Menu {
  const isMac = process.platform === 'darwin';
  // Undo/redo belong to the page's editors: the menu items send commands, and their shortcuts are
  // left to the page (registerAccelerator: false) so text fields keep their own undo.
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: '&File',
      submenu: [
        {
          label: 'Render Panel',
          accelerator: 'CmdOrCtrl+Enter',
          registerAccelerator: false,
          click: () => command('render'),
        },
        { type: 'separator' },
        { label: 'Open Data Folder', click: () => void shell.openPath(dataDir) },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    {
      label: '&Edit',
      submenu: [
        {
          label: 'Undo',
          accelerator: 'CmdOrCtrl+Z',
          registerAccelerator: false,
          click: () => command('undo'),
        },
        {
          label: 'Redo',
          accelerator: 'CmdOrCtrl+Shift+Z',
          registerAccelerator: false,
          click: () => command('redo'),
        },
        { type: 'separator' },
        { role: 'cut' },
        { role: 'copy' },
        { role: 'paste' },
        { role: 'selectAll' },
      ],
    },
    {
      label: '&View',
      submenu: [
        { label: 'Storyboard', accelerator: 'CmdOrCtrl+1', click: () => command('showStoryboard') },
        { label: 'Panel', accelerator: 'CmdOrCtrl+2', click: () => command('showPanel') },
        { label: 'Library', accelerator: 'CmdOrCtrl+3', click: () => command('showLibrary') },
        { label: 'Pages', accelerator: 'CmdOrCtrl+4', click: () => command('showPages') },
        { type: 'separator' },
        { role: 'togglefullscreen' },
        ...(app.isPackaged ? [] : [{ role: 'reload' as const }, { role: 'toggleDevTools' as const }]),
      ],
    },
    {
      label: '&Help',
      submenu: [
        {
          label: 'About MSP Studio',
          click: () => {
            void dialog.showMessageBox({
              type: 'info',
              title: 'About MSP Studio',
              message: `MSP Studio ${app.getVersion()}`,
              detail: `Multi-subject comic panels with MSP-Diffusion on ONNX Runtime.\nData: ${dataDir}`,
            });
          },
        },
      ],
    },
  ];
  return Menu.buildFromTemplate(template);
}

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting || !service) return;
  event.preventDefault();
  quitting = true;
  service.close().finally(() => app.quit());
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

function fatal(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  dialog.showErrorBox('MSP Studio cannot start', message);
  app.exit(1);
}

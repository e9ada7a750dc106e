/**
 * `npm start`: opens MSP Studio in Electron when its binary is installed, else in browser mode
 * (a local server; the URL is printed and opened in the default browser).
 *
 * ```
 * node dist/electron/cli.js start [--browser] [--port N] [--no-open] [--data-dir DIR]
 * ```
 *
 * Exit codes: 0 success, 1 failure, 2 bad arguments.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBrowserServer } from './browser-server.js';
import type { BrowserServer } from './browser-server.js';
import { defaultDataDir } from './data-dir.js';

export interface StartOptions {
  browser: boolean;
  port: number | undefined;
  open: boolean;
  dataDir: string;
}

const USAGE = `Usage: msp-studio start [--browser] [--port N] [--no-open] [--data-dir DIR]

Opens MSP Studio: in Electron when its binary is installed, else in your browser.

  --browser        serve the studio to a browser even where Electron is installed
  --port N         browser mode: listen on 127.0.0.1:N (default: a free port)
  --no-open        browser mode: print the address without opening a browser
  --data-dir DIR   where the library, projects and renders live
                   (default: ${defaultDataDir()})
  -h, --help       show this help`;

/** Thrown for bad command-line arguments (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Parses the arguments after the program name; `undefined` means "print the help". */
export function parseArgs(argv: readonly string[]): StartOptions | undefined {
  const options: StartOptions = { browser: false, port: undefined, open: true, dataDir: defaultDataDir() };
  const args = [...argv];
  if (args[0] === 'start') args.shift();
  while (args.length > 0) {
    const arg = args.shift() as string;
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      const v = inline ?? args.shift();
      if (v === undefined || v === '') throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-h':
      case '--help':
        return undefined;
      case '--browser':
        options.browser = true;
        break;
      case '--no-open':
        options.open = false;
        break;
      case '--port': {
        const text = value();
        const port = Number(text);
        if (!/^\d+$/.test(text) || port < 0 || port > 65535) {
          throw new UsageError(`--port must be a port number (0-65535), got "${text}"`);
        }
        options.port = port;
        break;
      }
      case '--data-dir':
        options.dataDir = resolve(value());
        break;
      default:
        throw new UsageError(`unknown argument "${arg}"; see --help`);
    }
  }
  return options;
}

/** The app version from package.json (found from the sources or from dist/electron/). */
export function appVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = createRequire(import.meta.url)(relative) as { name?: string; version?: string };
      if (pkg.name === 'msp-studio' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not at this level
    }
  }
  return '0.0.0';
}

/** The Electron binary's path when the `electron` package has downloaded it, else undefined. */
export function electronBinary(): string | undefined {
  try {
    const path = createRequire(import.meta.url)('electron') as unknown;
    return typeof path === 'string' && existsSync(path) ? path : undefined;
  } catch {
    return undefined; // the package throws when its binary was never downloaded
  }
}

function openInBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url.replace(/&/g, '^&')]]
        : ['xdg-open', [url]];
  try {
    const child = spawn(command, args, { stdio: 'ignore', detached: true });
    child.on('error', () => console.log('(could not open a browser; open the address above yourself)'));
    child.unref();
  } catch {
    console.log('(could not open a browser; open the address above yourself)');
  }
}

/** What {@link start} started. */
export type Started =
  { mode: 'electron'; exited: Promise<number> } | { mode: 'browser'; server: BrowserServer };

/**
 * Starts the studio: Electron when its binary is present (unless `--browser`), else browser mode.
 * Prints which, and in browser mode the URL.
 */
export async function start(
  options: StartOptions,
  log: (line: string) => void = console.log,
): Promise<Started> {
  const electron = options.browser ? undefined : electronBinary();
  if (electron) {
    const entry = fileURLToPath(new URL('./main/main.js', import.meta.url));
    log(`MSP Studio is running in Electron (data: ${options.dataDir})`);
    const child = spawn(electron, [entry, '--data-dir', options.dataDir], { stdio: 'inherit' });
    const exited = new Promise<number>((resolvePromise) => {
      child.on('exit', (code) => resolvePromise(code ?? 0));
      child.on('error', (err) => {
        console.error(`msp-studio: cannot start Electron: ${err.message}`);
        resolvePromise(1);
      });
    });
    return { mode: 'electron', exited };
  }

  const server = await startBrowserServer({
    dataDir: options.dataDir,
    ...(options.port !== undefined ? { port: options.port } : {}),
    service: { version: appVersion() },
  });
  const why = options.browser ? '' : " (Electron's binary is not installed)";
  log(`MSP Studio is running in browser mode at ${server.url}${why}`);
  log(`Data: ${options.dataDir}. Press Ctrl+C to stop.`);
  if (options.open) openInBrowser(server.url);
  return { mode: 'browser', server };
}

/** Runs the command line; resolves with the exit code once the studio has started (or failed). */
export async function main(argv: readonly string[]): Promise<number> {
  let options: StartOptions | undefined;
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`msp-studio: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const started = await start(options);
  if (started.mode === 'electron') return started.exited;
  const { server } = started;
  server.service.api.models.getInfo().then(
    (info) => console.log(`Model: ${info.name} on ${info.executionProvider}. ${info.note}`),
    (err: Error) => console.error(`msp-studio: ${err.message}`),
  );
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0) process.exit(code);
    },
    (err: unknown) => {
      console.error(`msp-studio: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}

/**
 * What an end-to-end test file needs around the studio: a production build of the renderer from the
 * sources under test, the browser-mode server on a temp data folder, an API client with the server's
 * token, and Debian's Chromium driven by Playwright.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { createBrowserTransport, createStudioClient } from '../../electron/api/client.js';
import type { StudioClient } from '../../electron/api/contract.js';
import { startBrowserServer } from '../../electron/browser-server.js';
import type { BrowserServer } from '../../electron/browser-server.js';

export const CHROMIUM = '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM);
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const SCREENSHOTS = join(ROOT, '.tmp', 'e2e');

export interface E2eStudio {
  dataDir: string;
  server: BrowserServer;
  api: StudioClient;
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

/**
 * Builds the renderer into `.tmp/<buildName>` (one folder per test file: files run in parallel), starts
 * the server and opens a 1440x900 page (not yet navigated).
 */
export async function startE2eStudio(buildName: string): Promise<E2eStudio> {
  const rendererDir = join(ROOT, '.tmp', buildName);
  // a production build, as shipped (vitest sets NODE_ENV=test, which would bundle React's dev build)
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({
      configFile: join(ROOT, 'renderer', 'vite.config.ts'),
      mode: 'production',
      logLevel: 'error',
      build: { outDir: rendererDir, emptyOutDir: true, sourcemap: false },
    });
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'msp-e2e-'));
  // the default model is the embedded tiny model, whatever MSP_MODEL_DIR the shell has
  const server = await startBrowserServer({ dataDir, port: 0, rendererDir, service: { env: {} } });
  const api = createStudioClient(createBrowserTransport({ baseUrl: server.origin, token: server.token }));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
  page.setDefaultTimeout(20_000);
  return {
    dataDir,
    server,
    api,
    browser,
    page,
    close: async () => {
      await browser.close();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The preload: the only bridge between the page and the main process. It exposes `window.msp`
 * (the contract's {@link MspBridge}) with two functions, and nothing else:
 *
 * - `invoke(method, payload)`: forwards allow-listed API methods on one IPC channel;
 * - `onEvent(listener)`: delivers StudioEvents; returns the unsubscribe function.
 *
 * It runs in Electron's sandbox, which executes preloads as CommonJS scripts that may require only
 * `electron` (this folder's package.json makes TypeScript emit CommonJS). So the allow-list is
 * repeated here; the type check below fails the build when it drifts from the contract.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS preload imports Electron this way
import electron = require('electron');
import type { ApiMethod, ApiResponse, MspBridge, StudioEvent, StudioEventListener } from '../api/contract.js';

const INVOKE_CHANNEL = 'msp:invoke';
const EVENT_CHANNEL = 'msp:event';

/** Mirrors API_CHANNELS in ../api/channels.ts (checked both ways at compile time). */
const ALLOWED = [
  'app.getInfo',
  'files.upload',
  'files.get',
  'subjects.list',
  'subjects.get',
  'subjects.create',
  'subjects.update',
  'subjects.delete',
  'subjects.restore',
  'subjects.addReferenceImages',
  'subjects.removeReferenceImage',
  'subjects.suggestToken',
  'casts.list',
  'casts.create',
  'casts.update',
  'casts.delete',
  'stories.list',
  'stories.get',
  'stories.create',
  'stories.update',
  'stories.delete',
  'stories.restore',
  'panels.list',
  'panels.get',
  'panels.create',
  'panels.update',
  'panels.duplicate',
  'panels.delete',
  'panels.restore',
  'panels.reorder',
  'panels.setSegmentMap',
  'panels.setPose',
  'panels.resolveRequest',
  'renders.renderPanel',
  'renders.list',
  'renders.get',
  'renders.delete',
  'renders.reveal',
  'jobs.list',
  'jobs.get',
  'jobs.cancel',
  'pages.list',
  'pages.get',
  'pages.create',
  'pages.update',
  'pages.delete',
  'pages.restore',
  'pages.reorder',
  'pages.export',
  'training.list',
  'training.get',
  'training.check',
  'training.start',
  'training.cancel',
  'training.resume',
  'models.getInfo',
  'models.list',
  'models.import',
  'models.remove',
  'models.setActive',
  'models.pickFolder',
] as const satisfies readonly ApiMethod[];

type Missing = Exclude<ApiMethod, (typeof ALLOWED)[number]>;
const complete: [Missing] extends [never] ? true : Missing = true;
void complete;

const allowed = new Set<string>(ALLOWED);
const listeners = new Set<StudioEventListener>();

electron.ipcRenderer.on(EVENT_CHANNEL, (_event, payload: StudioEvent) => {
  for (const listener of [...listeners]) {
    try {
      listener(payload);
    } catch (err) {
      console.error('MSP Studio event listener failed', err);
    }
  }
});

const bridge: MspBridge = {
  invoke(method: ApiMethod, payload?: unknown): Promise<ApiResponse<unknown>> {
    if (typeof method !== 'string' || !allowed.has(method)) {
      return Promise.resolve({
        ok: false,
        error: { code: 'unknown_method', message: `unknown API method ${JSON.stringify(String(method))}` },
      });
    }
    return electron.ipcRenderer.invoke(INVOKE_CHANNEL, method, payload) as Promise<ApiResponse<unknown>>;
  },
  onEvent(listener: StudioEventListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('onEvent needs a function');
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
    };
  },
};

electron.contextBridge.exposeInMainWorld('msp', bridge);

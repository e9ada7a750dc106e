/**
 * The allow-list of API channels: every `<namespace>.<method>` of the StudioApi. The preload
 * forwards only these; the browser server and IPC handlers answer only these.
 *
 * Values only, no Node imports (the renderer and the sandboxed preload import it).
 */
import type { ApiMethod } from './contract.js';

/** Every API method name, in contract order. */
export const API_CHANNELS = [
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

// Compile-time check that the list is complete: a method missing above makes this type `never`.
type Missing = Exclude<ApiMethod, (typeof API_CHANNELS)[number]>;
const complete: [Missing] extends [never] ? true : Missing = true;
void complete;

/** True for an allow-listed method name. */
export function isApiMethod(name: unknown): name is ApiMethod {
  return typeof name === 'string' && (API_CHANNELS as readonly string[]).includes(name);
}

/** The Electron IPC channel that carries API calls (`ipcRenderer.invoke(INVOKE_CHANNEL, method, payload)`). */
export const INVOKE_CHANNEL = 'msp:invoke';

/** The Electron IPC channel that carries StudioEvents to the window. */
export const EVENT_CHANNEL = 'msp:event';

/** The browser-mode WebSocket path for events. */
export const EVENTS_PATH = '/api/events';

/**
 * The one way the studio talks to its backend. In Electron the preload exposes `window.msp` (an
 * allow-listed bridge); in a browser the page talks to the local server (`POST /api/<method>`, events
 * on the `/api/events` WebSocket) with the token from the page URL. Either way the views get the same
 * typed {@link StudioClient}.
 *
 * @example
 * ```ts
 * const api = connectStudio();
 * const stories = await api.stories.list();
 * ```
 */
import { ApiError, createBrowserTransport, createStudioClient } from '../../../electron/api/client';
import type { ApiIssue, MspBridge, StudioClient } from '../../../electron/api/contract';

export { ApiError };

declare global {
  interface Window {
    /** Present in Electron only (the preload bridge). */
    msp?: MspBridge;
  }
}

/** Which transport {@link connectStudio} picked. */
export type TransportKind = 'electron' | 'browser';

export interface StudioConnection {
  api: StudioClient;
  transport: TransportKind;
}

/**
 * Connects with whatever the page has: the Electron bridge when present, else the browser-mode server
 * of this page's origin, authenticated with the `?token=` of the page URL.
 */
export function connectStudio(): StudioConnection {
  if (window.msp) return { api: createStudioClient(window.msp), transport: 'electron' };
  const token = new URLSearchParams(window.location.search).get('token') ?? undefined;
  const transport = createBrowserTransport({ baseUrl: window.location.origin, token });
  return { api: createStudioClient(transport), transport: 'browser' };
}

/** One sentence for the UI from anything thrown by an API call. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === 'unauthorized') {
      return 'The studio server refused this page: open the address the server printed (it carries the token)';
    }
    return error.message;
  }
  if (error instanceof TypeError && /fetch/i.test(error.message)) {
    return 'The studio server is not answering; is it still running?';
  }
  return error instanceof Error ? error.message : String(error);
}

/** The field issues of an `invalid_input` answer (empty for other errors). */
export function errorIssues(error: unknown): readonly ApiIssue[] {
  return error instanceof ApiError && error.code === 'invalid_input' ? error.issues : [];
}

/**
 * The typed client over either transport: Electron's preload bridge (`window.msp`) or browser mode
 * (fetch + WebSocket against the local server). Browser-safe: no Node or Electron imports, and no
 * DOM typings needed (the globals are reached through small structural types).
 *
 * @example
 * const api = createStudioClient(window.msp ?? createBrowserTransport());
 * const stories = await api.stories.list();
 * const off = api.events.subscribe((e) => console.log(e.type));
 */
import { API_CHANNELS, EVENTS_PATH } from './channels.js';
import type {
  ApiErrorCode,
  ApiErrorInfo,
  ApiIssue,
  ApiMethod,
  ApiResponse,
  MspBridge,
  StudioClient,
  StudioEvent,
  StudioEventListener,
} from './contract.js';

/** An `{ ok: false }` answer as an exception. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly issues: readonly ApiIssue[];

  constructor(info: ApiErrorInfo) {
    super(info.message);
    this.code = info.code;
    this.issues = info.issues ?? [];
  }
}

/**
 * The typed API over a bridge: `api.panels.update({...})` calls `bridge.invoke('panels.update', {...})`
 * and unwraps the envelope (throwing {@link ApiError}).
 */
export function createStudioClient(bridge: MspBridge): StudioClient {
  const api: Record<string, Record<string, (payload?: unknown) => Promise<unknown>>> = {};
  for (const method of API_CHANNELS) {
    const [namespace, name] = method.split('.') as [string, string];
    api[namespace] ??= {};
    api[namespace][name] = async (payload?: unknown) => {
      const response = await bridge.invoke(method, payload);
      if (!response.ok) throw new ApiError(response.error);
      return response.value;
    };
  }
  api.events = { subscribe: (listener: StudioEventListener) => bridge.onEvent(listener) } as never;
  return api as unknown as StudioClient;
}

/** The parts of `fetch` the browser transport uses. */
export type FetchLike = (
  url: string,
  init: { method: string; headers: Record<string, string>; body: string; credentials?: 'same-origin' },
) => Promise<{ status: number; json(): Promise<unknown> }>;

/** The parts of a WebSocket the browser transport uses. */
export interface WebSocketLike {
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(): void;
}

export type WebSocketFactory = (url: string) => WebSocketLike;

export interface BrowserTransportOptions {
  /** Server origin, e.g. `http://127.0.0.1:5173`; default: the page's origin. */
  baseUrl?: string;
  /**
   * Bearer token. Not needed in the page served by the studio (its cookie authenticates); tests and
   * other clients pass it.
   */
  token?: string;
  fetch?: FetchLike;
  /** Opens the event socket (default: the global WebSocket). */
  webSocket?: WebSocketFactory;
  /** Delay before reconnecting a dropped event socket, ms (default 1000). */
  reconnectMs?: number;
}

/**
 * Browser mode's transport: `POST /api/<method>` and the `/api/events` WebSocket. The socket opens
 * with the first listener and closes with the last; it reconnects when dropped.
 */
export function createBrowserTransport(options: BrowserTransportOptions = {}): MspBridge {
  const g = globalThis as unknown as {
    fetch?: FetchLike;
    WebSocket?: new (url: string) => WebSocketLike;
    location?: { origin: string };
  };
  const baseUrl = (options.baseUrl ?? g.location?.origin ?? '').replace(/\/$/, '');
  const doFetch = options.fetch ?? g.fetch?.bind(globalThis);
  const openSocket =
    options.webSocket ??
    ((url: string) => {
      if (!g.WebSocket) throw new Error('this environment has no WebSocket; pass options.webSocket');
      return new g.WebSocket(url);
    });
  const reconnectMs = options.reconnectMs ?? 1000;
  const listeners = new Set<StudioEventListener>();
  let socket: WebSocketLike | undefined;
  let reconnect: ReturnType<typeof setTimeout> | undefined;

  const eventsUrl = () => {
    const ws = baseUrl.replace(/^http/, 'ws');
    const query = options.token === undefined ? '' : `?token=${encodeURIComponent(options.token)}`;
    return `${ws}${EVENTS_PATH}${query}`;
  };

  const connect = () => {
    reconnect = undefined;
    if (listeners.size === 0 || socket) return;
    const s = openSocket(eventsUrl());
    socket = s;
    s.onmessage = (message) => {
      let event: StudioEvent;
      try {
        event = JSON.parse(String(message.data)) as StudioEvent;
      } catch {
        return;
      }
      for (const listener of [...listeners]) listener(event);
    };
    s.onerror = () => undefined;
    s.onclose = () => {
      if (socket === s) socket = undefined;
      if (listeners.size > 0 && reconnect === undefined) reconnect = setTimeout(connect, reconnectMs);
    };
  };

  return {
    async invoke(method: ApiMethod, payload?: unknown): Promise<ApiResponse<unknown>> {
      if (!doFetch) throw new Error('this environment has no fetch; pass options.fetch');
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      const response = await doFetch(`${baseUrl}/api/${method}`, {
        method: 'POST',
        headers,
        body: payload === undefined ? '' : JSON.stringify(payload),
        credentials: 'same-origin',
      });
      const body = (await response.json().catch(() => undefined)) as ApiResponse<unknown> | undefined;
      if (body && typeof body === 'object' && 'ok' in body) return body;
      return {
        ok: false,
        error: { code: 'internal', message: `the server answered ${response.status} without a result` },
      };
    },
    onEvent(listener: StudioEventListener): () => void {
      listeners.add(listener);
      connect();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) {
          if (reconnect !== undefined) clearTimeout(reconnect);
          reconnect = undefined;
          const s = socket;
          socket = undefined;
          s?.close();
        }
      };
    },
  };
}

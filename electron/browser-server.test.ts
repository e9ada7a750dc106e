import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodePng, readPngText } from '../native-models/image/png.js';
import { personFromTemplate } from '../native-models/pose/openpose.js';
import { ApiError, createBrowserTransport, createStudioClient } from './api/client.js';
import type { WebSocketLike } from './api/client.js';
import type { Job, Render, StudioClient, StudioEvent } from './api/contract.js';
import { startBrowserServer } from './browser-server.js';
import type { BrowserServer } from './browser-server.js';

/** A 64x64 segment map: the left half red (a region), the right half black (background). */
async function segmentMapPng(): Promise<Uint8Array> {
  const data = new Uint8Array(64 * 64 * 3);
  for (let y = 0; y < 64; y++) for (let x = 0; x < 32; x++) data[(y * 64 + x) * 3] = 255;
  return encodePng({ width: 64, height: 64, data });
}

describe('browser mode server', () => {
  let dir: string;
  let server: BrowserServer;
  let api: StudioClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'msp-browser-'));
    const rendererDir = join(dir, 'renderer');
    await mkdir(rendererDir);
    await writeFile(join(rendererDir, 'index.html'), '<!doctype html><title>MSP Studio test page</title>');
    // renders use the default model: the embedded tiny model, whatever MSP_MODEL_DIR the shell has
    server = await startBrowserServer({ dataDir: join(dir, 'data'), rendererDir, service: { env: {} } });
    api = createStudioClient(
      createBrowserTransport({
        baseUrl: server.origin,
        token: server.token,
        webSocket: (url) => new WebSocket(url) as unknown as WebSocketLike,
        reconnectMs: 50,
      }),
    );
  });

  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens on 127.0.0.1 with a random port and prints a URL with the token', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(server.token.length).toBeGreaterThanOrEqual(32);
  });

  it('rejects API calls, files and pages without the token', async () => {
    const call = await fetch(`${server.origin}/api/stories.list`, { method: 'POST' });
    expect(call.status).toBe(401);
    expect(((await call.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const wrong = await fetch(`${server.origin}/api/stories.list`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrong.status).toBe(401);
    expect((await fetch(`${server.origin}/`)).status).toBe(401);
    expect((await fetch(`${server.origin}/files/${'a'.repeat(64)}`)).status).toBe(401);
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/api/events`);
    const refused = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => resolve(101));
      socket.on('error', () => undefined);
    });
    expect(refused).toBe(401);
  });

  it('refuses other hosts and origins (DNS rebinding, cross-site requests)', async () => {
    const auth = { authorization: `Bearer ${server.token}` };
    const crossSite = await fetch(`${server.origin}/api/stories.list`, {
      method: 'POST',
      headers: { ...auth, origin: 'https://evil.example' },
    });
    expect(crossSite.status).toBe(403);
  });

  it('sets a cookie from /?token= and serves the page with a strict CSP', async () => {
    const entry = await fetch(server.url, { redirect: 'manual' });
    expect(entry.status).toBe(303);
    const cookie = entry.headers.get('set-cookie') ?? '';
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const page = await fetch(`${server.origin}/`, { headers: { cookie: cookie.split(';')[0] } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('MSP Studio test page');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    // The cookie authenticates API calls from the page too.
    const call = await fetch(`${server.origin}/api/app.getInfo`, {
      method: 'POST',
      headers: { cookie: cookie.split(';')[0] },
    });
    expect(await call.json()).toMatchObject({ ok: true, value: { mode: 'browser' } });
  });

  it('serves an export as a download with the name asked for', async () => {
    const story = await api.stories.create({ title: 'Book' });
    // a page whose only content is lettering exports without renders
    const page = await api.pages.create({
      storyId: story.id,
      content: {
        template: 'single',
        dpi: 72,
        lettering: [
          {
            id: 'c',
            kind: 'caption',
            x: 0.1,
            y: 0.1,
            width: 0.5,
            height: 0.1,
            tail: null,
            text: 'Once',
            fontSizePt: 12,
          },
        ],
      },
    });
    const result = await api.pages.export({ format: 'png', pageId: page.id });
    if (result.status !== 'ready') throw new Error(`expected a download, got ${result.status}`);
    expect(result.fileName).toBe('Book - page 1.png');
    const response = await fetch(
      `${server.origin}${result.file.url}?download=${encodeURIComponent('Bœk: page 1.png')}`,
      { headers: { authorization: `Bearer ${server.token}` } },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="B_k_ page 1.png"; filename*=UTF-8''B%C5%93k_%20page%201.png`,
    );
    expect(new Uint8Array(await response.arrayBuffer()).subarray(1, 4)).toEqual(new Uint8Array([80, 78, 71]));
  });

  it('answers validation errors with 400 and the field', async () => {
    const response = await fetch(`${server.origin}/api/stories.create`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 42 }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; issues: { path: string }[] } };
    expect(body.error.code).toBe('invalid_input');
    expect(body.error.issues[0].path).toBe('title');
    await expect(api.panels.get({ id: 'missing' })).rejects.toBeInstanceOf(ApiError);
  });

  it('renders a panel end to end: story, panel, segment map, progress over the socket, the PNG', async () => {
    const story = await api.stories.create({ title: 'The Lighthouse' });
    const panel = await api.panels.create({
      storyId: story.id,
      request: {
        prompt: 'two friends at a picnic',
        regions: [{ color: '#ff0000', prompt: 'a red car' }],
        steps: 4,
        width: 64,
        height: 64,
      },
    });
    expect((await api.stories.get({ id: story.id })).panelIds).toEqual([panel.id]);
    const png = await segmentMapPng();
    const withMap = await api.panels.setSegmentMap({
      panelId: panel.id,
      image: { data: Buffer.from(png).toString('base64'), mediaType: 'image/png', name: 'map.png' },
    });
    expect(withMap.request.segmentMap?.url).toBe(`/files/${withMap.request.segmentMap?.hash}`);

    const events: StudioEvent[] = [];
    let finish: (value: { job: Job; render: Render }) => void = () => undefined;
    const finished = new Promise<{ job: Job; render: Render }>((resolve) => (finish = resolve));
    const failed = new Promise<never>((_, reject) => {
      api.events.subscribe((event) => {
        events.push(event);
        if (event.type === 'job.finished') finish(event);
        if (event.type === 'job.updated' && event.job.state === 'failed') reject(new Error(event.job.error));
      });
    });
    // Let the socket connect before the job starts.
    await new Promise((resolve) => setTimeout(resolve, 200));

    const job = await api.renders.renderPanel({ panelId: panel.id });
    expect(job.state).toBe('queued');
    const done = await Promise.race([finished, failed]);
    expect(done.job.id).toBe(job.id);
    expect(done.job.state).toBe('finished');
    expect(done.render.panelId).toBe(panel.id);
    expect(done.render.request.width).toBe(64);
    expect(done.render.request.segments[0]).toEqual({ color: '#ff0000', prompt: 'a red car' });

    const progress = events.filter((e) => e.type === 'job.progress' && e.jobId === job.id);
    const steps = progress.flatMap((e) => (e.type === 'job.progress' ? [e.progress.step] : []));
    expect(steps).toContain(4);
    expect(progress.some((e) => e.type === 'job.progress' && e.preview !== undefined)).toBe(true);
    const states = events.flatMap((e) =>
      e.type === 'job.updated' && e.job.id === job.id ? [e.job.state] : [],
    );
    expect(states).toEqual(['queued', 'running', 'finished']);

    const image = await fetch(`${server.origin}${done.render.image.url}`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(image.status).toBe(200);
    expect(image.headers.get('content-type')).toBe('image/png');
    const bytes = new Uint8Array(await image.arrayBuffer());
    expect(JSON.parse(readPngText(bytes)['msp:request']).seed).toBe(done.render.seed);

    const history = await api.renders.list({ panelId: panel.id });
    expect(history.map((r) => r.id)).toEqual([done.render.id]);
    const info = await api.models.getInfo();
    expect(info).toMatchObject({ name: 'tiny-sd', source: 'embedded', hasControlNet: true });
    expect(info.sizes.defaultImageSize).toBe(128);
    expect(info.note).toMatch(/embedded tiny model/);
  });

  it('fails a render whose segment map has a color no region claims, with a message naming it', async () => {
    const story = await api.stories.create({ title: 'Unbound' });
    const panel = await api.panels.create({
      storyId: story.id,
      request: {
        prompt: 'a park',
        regions: [{ color: '#ff0000', prompt: 'a cat' }],
        steps: 2,
        width: 64,
        height: 64,
      },
    });
    const data = new Uint8Array(64 * 64 * 3);
    for (let i = 0; i < 64 * 32; i++) data[i * 3] = 255; // top half red
    for (let i = 64 * 32; i < 64 * 64; i++) data[i * 3 + 1] = 255; // bottom half green: unbound
    const map = Buffer.from(await encodePng({ width: 64, height: 64, data })).toString('base64');
    await api.panels.setSegmentMap({ panelId: panel.id, image: { data: map, mediaType: 'image/png' } });
    const ended = new Promise<Job>((resolve) => {
      const off = api.events.subscribe((event) => {
        if (
          event.type === 'job.updated' &&
          event.job.panelId === panel.id &&
          event.job.state !== 'queued' &&
          event.job.state !== 'running'
        ) {
          off();
          resolve(event.job);
        }
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await api.renders.renderPanel({ panelId: panel.id });
    const job = await ended;
    expect(job.state).toBe('failed');
    expect(job.error).toMatch(/#00ff00/);
    expect((await api.panels.get({ id: panel.id })).renders).toEqual([]);
  });

  it('renders a posed panel through ControlNet (the pose document goes to the worker as OpenPose JSON)', async () => {
    const story = await api.stories.create({ title: 'Posed' });
    const pose = {
      width: 64,
      height: 64,
      people: [personFromTemplate('standing', { x: 32, y: 60, scale: 50 })],
    };
    const panel = await api.panels.create({ storyId: story.id, request: { prompt: 'a dancer', steps: 2 } });
    await api.panels.setPose({ panelId: panel.id, pose });
    const resolved = await api.panels.resolveRequest({ id: panel.id });
    expect(resolved.ok && resolved.request.pose).toMatch(/^[0-9a-f]{64}\.json$/);
    const ended = new Promise<Job>((resolve) => {
      const off = api.events.subscribe((event) => {
        if (
          event.type === 'job.updated' &&
          event.job.panelId === panel.id &&
          ['finished', 'failed'].includes(event.job.state)
        ) {
          off();
          resolve(event.job);
        }
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await api.renders.renderPanel({ panelId: panel.id });
    const job = await ended;
    expect(job.error).toBeUndefined();
    expect(job.state).toBe('finished');
    const [render] = (await api.panels.get({ id: panel.id })).renders;
    expect(render.request.pose).toBe(resolved.ok ? resolved.request.pose : '');
    expect(render.panelRequest.pose?.people).toHaveLength(1);
  });
});

/**
 * End to end through a real browser: the built renderer served by the browser-mode server (temp data
 * folder, random port, per-run token), driven with Playwright and Debian's Chromium through page
 * objects. Panels have the default model's size: the embedded tiny model (tiny-sd), 128x128, which the
 * render uses (a few steps, to stay quick). Screenshots of every main screen go to `.tmp/e2e/`.
 *
 * Skipped, with a message, where /usr/bin/chromium is missing (`apt-get install -y chromium`).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBrowserTransport, createStudioClient } from '../../electron/api/client.js';
import type { Panel, StudioClient } from '../../electron/api/contract.js';
import { startBrowserServer } from '../../electron/browser-server.js';
import type { BrowserServer } from '../../electron/browser-server.js';
import { decodeImageRgba } from '../../native-models/image/image.js';
import { encodePng } from '../../native-models/image/png.js';
import { StudioPage } from './pages/StudioPage.js';

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const SCREENSHOTS = join(ROOT, '.tmp', 'e2e');
const RENDERER_DIR = join(ROOT, '.tmp', 'e2e-renderer');

if (!hasChromium) {
  console.warn(`studio e2e skipped: ${CHROMIUM} is missing (install it with: apt-get install -y chromium)`);
}

/** A small opaque PNG, as a reference image for a subject. */
async function referencePng(): Promise<Buffer> {
  const size = 32;
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const o = (y * size + x) * 3;
      data[o] = 200;
      data[o + 1] = 120 + y * 3;
      data[o + 2] = 60 + x * 4;
    }
  }
  return Buffer.from(await encodePng({ width: size, height: size, data }));
}

/** A file the server stores (`/files/<hash>`), as bytes. */
async function fileBytes(url: string, origin: string, token: string): Promise<Uint8Array> {
  const response = await fetch(`${origin}${url}`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

/** The stored segment map of a panel, decoded (RGBA), as the backend will read it. */
async function segmentMapOf(api: StudioClient, panel: Panel, origin: string, token: string) {
  if (!panel.request.segmentMap) throw new Error('the panel has no segment map yet');
  return decodeImageRgba(await fileBytes(panel.request.segmentMap.url, origin, token));
}

function pixel(image: { width: number; data: Uint8Array }, x: number, y: number): string {
  const o = (y * image.width + x) * 4;
  const [r, g, b, a] = image.data.subarray(o, o + 4);
  return a === 0 ? 'transparent' : `#${[r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

describe.skipIf(!hasChromium)(
  `studio in browser mode${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing)`}`,
  () => {
    let dataDir: string;
    let server: BrowserServer;
    let browser: Browser;
    let page: Page;
    let studio: StudioPage;
    let api: StudioClient;

    /** The story's panel order as the backend has it. */
    const panelIds = async (): Promise<string[]> => (await api.stories.list())[0].panelIds;

    beforeAll(async () => {
      // the server serves this build of the renderer, made from the sources under test; a production
      // build, as shipped (vitest sets NODE_ENV=test, which would make Vite bundle React's dev build)
      const nodeEnv = process.env.NODE_ENV;
      process.env.NODE_ENV = 'production';
      try {
        await build({
          configFile: join(ROOT, 'renderer', 'vite.config.ts'),
          mode: 'production',
          logLevel: 'error',
          build: { outDir: RENDERER_DIR, emptyOutDir: true, sourcemap: false },
        });
      } finally {
        process.env.NODE_ENV = nodeEnv;
      }
      dataDir = await mkdtemp(join(tmpdir(), 'msp-e2e-'));
      // the default model is the embedded tiny model, whatever MSP_MODEL_DIR the shell has
      server = await startBrowserServer({
        dataDir,
        port: 0,
        rendererDir: RENDERER_DIR,
        service: { env: {} },
      });
      api = createStudioClient(createBrowserTransport({ baseUrl: server.origin, token: server.token }));
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
        ],
      });
      page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
      page.setDefaultTimeout(20_000);
      studio = new StudioPage(page, SCREENSHOTS);
    }, 180_000);

    afterAll(async () => {
      await browser?.close();
      await server?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('creates a story and a cast with a subject; refuses a file that is not an image', async () => {
      await studio.open(server.url);
      await studio.screenshot('01-first-start');
      await studio.createStory('The Lighthouse');
      expect(await studio.currentStory()).toBe('The Lighthouse');

      await studio.go('Library');
      const { library } = studio;
      await library.createSubject('Mara', 'woman in a comic style');
      expect(await library.token('Mara')).toMatch(/^\w+$/);

      await library.addReferenceFiles('Mara', [
        { name: 'mara-1.png', mimeType: 'image/png', buffer: await referencePng() },
      ]);
      await expect.poll(() => library.referenceCount('Mara')).toBe(1);
      await library.dropFiles('Mara', [
        {
          name: 'notes.txt',
          mimeType: 'text/plain',
          base64: Buffer.from('not a picture').toString('base64'),
        },
      ]);
      await expect
        .poll(() => library.message('Mara'))
        .toContain('notes.txt is not a PNG, JPEG or WebP image');
      expect(await library.referenceCount('Mara')).toBe(1);
      // a file that says it is a PNG but is cut short: the backend cannot decode it and says so
      const cut = (await referencePng()).subarray(0, 60);
      await library.dropFiles('Mara', [
        { name: 'cut.png', mimeType: 'image/png', base64: Buffer.from(cut).toString('base64') },
      ]);
      await expect
        .poll(() => library.message('Mara'))
        .toBe('cut.png is not a readable image (unsupported or corrupt file)');
      expect(await library.referenceCount('Mara')).toBe(1);

      await library.createCast('Lighthouse cast');
      await library.addToCast('Lighthouse cast', 'Mara');
      await library.useCastForStory('Lighthouse cast');
      await studio.screenshot('02-library');
    }, 60_000);

    it('paints two regions (brush and rectangle), binds a subject, writes prompts, poses a skeleton', async () => {
      await studio.go('Storyboard');
      await studio.storyboard.addPanel();
      await studio.waitForModel();
      expect(await studio.modelBadge()).toContain('tiny-sd · CPU');
      await studio.storyboard.open(0);
      const { editor } = studio;
      await editor.waitUntilOpen();
      expect(await studio.place()).toBe('Panel');
      await expect.poll(() => page.locator('.statusline').textContent()).toContain('128×128');

      // Region 1: pick Mara from the cast, paint her with the brush
      await (await editor.castMember('Mara')).click();
      await expect.poll(() => editor.regions.count()).toBe(1);
      await editor.pressKey('b');
      expect(await editor.activeTool()).toBe('Brush');
      await editor.drag([
        { x: 24, y: 28 },
        { x: 28, y: 60 },
        { x: 32, y: 100 },
      ]);
      await editor.setRegionPrompt(0, 'waving from the pier');

      // Region 2: a free region filled with the rectangle tool
      await editor.addFreeRegion();
      await expect.poll(() => editor.regions.count()).toBe(2);
      await editor.pressKey('r');
      expect(await editor.activeTool()).toBe('Rectangle');
      await editor.drag([
        { x: 76, y: 40 },
        { x: 116, y: 112 },
      ]);
      // rendering now is refused before anything is sent, with the reason next to the region at fault
      await editor.render();
      await expect.poll(() => editor.renderError()).toContain('has no prompt');
      await expect.poll(() => editor.regionMessages(1)).toContain('Region #2 has no prompt');
      expect(await editor.regionInvalid(1)).toBe(true);
      expect(await editor.history.count()).toBe(0);
      await studio.screenshot('03a-render-refused');

      await editor.setRegionPrompt(1, 'a red lamp');
      expect(await editor.regionInvalid(1)).toBe(false);
      await editor.setPrompt('a girl and a lamp on a pier at dusk, comic style');
      await editor.setBackgroundPrompt('a wooden pier and the sea');

      // a skeleton, then drag its right wrist
      await editor.addSkeleton('standing');
      expect(await editor.selectedPerson()).toBe('Person 1');
      expect(await editor.activeTool()).toBe('Pose');
      await editor.waitSaved();
      const panelId = (await panelIds())[0];
      const before = (await api.panels.get({ id: panelId })).request;
      const wrist = before.pose!.people[0].keypoints[4]!;
      await editor.drag([
        { x: wrist.x, y: wrist.y },
        { x: wrist.x - 8, y: wrist.y - 32 },
      ]);
      await editor.waitSaved();
      const saved = (await api.panels.get({ id: panelId })).request;
      const moved = saved.pose!.people[0].keypoints[4]!;
      expect(moved.x).toBeCloseTo(wrist.x - 8, 0);
      expect(moved.y).toBeCloseTo(wrist.y - 32, 0);

      // the request carries both regions, bound and prompted, and the map has exactly their colors
      expect(saved.regions.map((r) => r.prompt)).toEqual(['waving from the pier', 'a red lamp']);
      expect(saved.regions[0].subjectId).toBeTruthy();
      expect(saved.regions[1].subjectId ?? null).toBeNull();
      const map = await segmentMapOf(api, await api.panels.get({ id: panelId }), server.origin, server.token);
      expect([map.width, map.height]).toEqual([128, 128]);
      expect(pixel(map, 28, 60)).toBe(saved.regions[0].color);
      expect(pixel(map, 96, 80)).toBe(saved.regions[1].color);
      expect(pixel(map, 60, 10)).toBe('transparent');
      const colors = new Set<string>();
      for (let y = 0; y < 128; y++) for (let x = 0; x < 128; x++) colors.add(pixel(map, x, y));
      expect([...colors].sort()).toEqual(
        [saved.regions[0].color, saved.regions[1].color, 'transparent'].sort(),
      );
      await studio.screenshot('03-panel-painted');
    }, 90_000);

    it('renders with progress and lands the result in the history', async () => {
      const { editor } = studio;
      await editor.setSteps(8);
      await editor.waitSaved();
      await editor.recordProgress();
      await editor.render();
      await page.getByTestId('progress').waitFor({ timeout: 60_000 });
      await studio.screenshot('04-rendering');
      await editor.waitForRenders(1);
      expect(await editor.renderError()).toBeNull();
      const seen = await editor.progressSeen();
      expect(seen.some((text) => /^Step \d+\/8/.test(text))).toBe(true);
      await expect.poll(() => editor.history.first().getAttribute('title')).toMatch(/^Seed \d+ · 8 steps/);
      await page.getByTestId('progress').waitFor({ state: 'detached' });
      await studio.screenshot('05-rendered');
      // a 128x128 picture from the embedded model, through its ControlNet (the panel has a skeleton)
      const [render] = (await api.panels.get({ id: (await panelIds())[0] })).renders;
      expect(render.modelName).toBe('tiny-sd');
      // live previews replaced the canvas picture while it ran, then the render took their place
      const images = await editor.imagesSeen();
      expect(images[images.length - 1]).toBe(render.image.url);
      expect(images.filter((url) => url !== render.image.url).length).toBeGreaterThanOrEqual(2);
      const image = await decodeImageRgba(await fileBytes(render.image.url, server.origin, server.token));
      expect([image.width, image.height]).toEqual([128, 128]);
      expect(render.request.pose).toBeTruthy();

      // "Open file location": browser mode saves a named copy and says where
      await editor.history.first().click();
      const message = await editor.openFileLocation();
      const named = join(dataDir, 'renders', 'The Lighthouse', `Panel 1 - seed ${render.seed}.png`);
      expect(message).toBe(`Saved as ${named}`);
      expect(new Uint8Array(await readFile(named))).toEqual(
        await fileBytes(render.image.url, server.origin, server.token),
      );
      await studio.screenshot('05b-file-location');
    }, 180_000);

    it('zooms with the wheel, pans with Space-drag, and keeps the map untouched while doing so', async () => {
      const { editor } = studio;
      const panelId = (await panelIds())[0];
      const before = await editor.viewport();
      const centre = await editor.toScreen({ x: 64, y: 64 });
      await page.mouse.move(centre.x, centre.y);
      await page.mouse.wheel(0, -300);
      await expect.poll(async () => (await editor.viewport()).zoom).toBeGreaterThan(before.zoom);
      // the point under the pointer stays put while zooming
      const after = await editor.toScreen({ x: 64, y: 64 });
      expect(Math.abs(after.x - centre.x)).toBeLessThan(2);

      await editor.selectTool('Brush');
      const zoomed = await editor.viewport();
      const mapBefore = (await api.panels.get({ id: panelId })).request.segmentMap?.hash;
      await page.keyboard.down('Space');
      await editor.drag([
        { x: 40, y: 40 },
        { x: 60, y: 50 },
      ]);
      await page.keyboard.up('Space');
      const panned = await editor.viewport();
      expect(Math.abs(panned.panX - (zoomed.panX + 20 * zoomed.zoom))).toBeLessThan(2);
      expect(Math.abs(panned.panY - (zoomed.panY + 10 * zoomed.zoom))).toBeLessThan(2);
      await page.keyboard.press('Control+1');
      await expect.poll(async () => (await editor.viewport()).zoom).toBeCloseTo(before.zoom, 3);
      await editor.waitSaved();
      expect((await api.panels.get({ id: panelId })).request.segmentMap?.hash).toBe(mapBefore);
    }, 60_000);

    it('closes a lasso polygon, hides an occluded joint, reuses a render as scaffold and its settings', async () => {
      const { editor } = studio;
      const panelId = (await panelIds())[0];
      await editor.selectRegion(1);
      await editor.pressKey('l');
      expect(await editor.activeTool()).toBe('Lasso');
      for (const p of [
        { x: 80, y: 8 },
        { x: 120, y: 8 },
        { x: 120, y: 28 },
      ]) {
        await editor.click(p);
      }
      await editor.hover({ x: 88, y: 28 });
      await studio.screenshot('05a-lasso');
      await editor.click({ x: 80.6, y: 8.6 }); // on the first corner: closes the polygon
      await editor.waitSaved();
      const color = (await api.panels.get({ id: panelId })).request.regions[1].color;
      const map = await segmentMapOf(api, await api.panels.get({ id: panelId }), server.origin, server.token);
      expect(pixel(map, 116, 12)).toBe(color);
      expect(pixel(map, 82, 24)).toBe('transparent'); // outside the triangle

      await editor.hideJoint('left elbow');
      await editor.waitSaved();
      expect((await api.panels.get({ id: panelId })).request.pose!.people[0].keypoints[6]).toBeNull();

      await editor.history.first().click();
      await editor.useAsScaffold();
      await editor.reuseSettings();
      await editor.waitSaved();
      const panel = await api.panels.get({ id: panelId });
      expect(panel.request.scaffolding).toMatchObject({ image: { hash: panel.renders[0].image.hash } });
      expect(panel.request.seedLocked).toBe(true);
      expect(panel.request.seed).toBe(panel.renders[0].seed);

      // a flat colour replaces the image, and one undo brings the image back
      await editor.setScaffoldColor('#336699');
      await editor.waitSaved();
      await studio.screenshot('05b-scaffold-colour');
      expect((await api.panels.get({ id: panelId })).request.scaffolding).toEqual({ color: '#336699' });
      await editor.undo();
      await editor.waitSaved();
      expect((await api.panels.get({ id: panelId })).request.scaffolding).toMatchObject({
        image: { hash: panel.renders[0].image.hash },
      });
    }, 60_000);

    it('undoes and redoes a brush stroke, and the backend follows', async () => {
      const { editor } = studio;
      const panelId = (await panelIds())[0];
      await editor.selectRegion(1);
      await editor.selectTool('Brush');
      await editor.drag([
        { x: 60, y: 120 },
        { x: 68, y: 120 },
      ]);
      await editor.waitSaved();
      const color = (await api.panels.get({ id: panelId })).request.regions[1].color;
      const read = async () =>
        pixel(
          await segmentMapOf(api, await api.panels.get({ id: panelId }), server.origin, server.token),
          64,
          120,
        );
      expect(await read()).toBe(color);
      expect(await editor.undoTitle()).toBe('Undo Brush stroke (Ctrl+Z)');

      await editor.undo();
      await editor.waitSaved();
      expect(await read()).toBe('transparent');
      await editor.redo();
      await editor.waitSaved();
      expect(await read()).toBe(color);
    }, 60_000);

    it('links a skeleton to a region: moving one offers to move the other, as its own undo step', async () => {
      const { editor } = studio;
      const panelId = (await panelIds())[0];
      const read = async () => {
        const panel = await api.panels.get({ id: panelId });
        const map = await segmentMapOf(api, panel, server.origin, server.token);
        return { request: panel.request, map };
      };
      await editor.selectPerson('Person 1');
      await editor.linkSelectedSkeleton('#1');
      await expect.poll(() => editor.regionLink(0)).toBe('P1');
      expect(await editor.regionLink(1)).toBeNull();
      await editor.waitSaved();
      const before = await read();
      expect(before.request.regions[0].person).toBe(0);
      const color = before.request.regions[0].color;
      expect(pixel(before.map, 28, 60)).toBe(color);
      const neck = before.request.pose!.people[0].keypoints[1]!;

      // move Mara's paint 20 px right with the move tool: the skeleton is offered, not moved
      await editor.pressKey('v');
      expect(await editor.activeTool()).toBe('Move');
      await editor.drag([
        { x: 28.5, y: 60.5 },
        { x: 38.5, y: 60.5 },
        { x: 48.5, y: 60.5 },
      ]);
      await expect
        .poll(() => editor.linkedOffer())
        .toBe('Person 1 is linked to this region. Move the skeleton too?');
      await studio.screenshot('06a-linked-offer');
      await editor.answerLinkedOffer(true);
      await editor.waitSaved();
      const after = await read();
      expect(pixel(after.map, 48, 60)).toBe(color);
      expect(pixel(after.map, 24, 60)).toBe('transparent');
      expect(after.request.pose!.people[0].keypoints[1]).toMatchObject({ x: neck.x + 20, y: neck.y });
      expect(await editor.undoTitle()).toBe('Undo Move linked skeleton (Ctrl+Z)');

      // undo takes back the skeleton's move only
      await editor.undo();
      await editor.waitSaved();
      const undone = await read();
      expect(undone.request.pose!.people[0].keypoints[1]).toMatchObject({ x: neck.x, y: neck.y });
      expect(pixel(undone.map, 48, 60)).toBe(color);

      // the other way round: drag the skeleton by a limb; declining leaves the region where it is
      await editor.selectTool('Pose');
      const hip = undone.request.pose!.people[0].keypoints[8]!;
      const onLimb = { x: (neck.x + hip.x) / 2, y: (neck.y + hip.y) / 2 };
      await editor.drag([onLimb, { x: onLimb.x - 5, y: onLimb.y }, { x: onLimb.x - 10, y: onLimb.y }]);
      await expect
        .poll(() => editor.linkedOffer())
        .toBe('Region #1 (Mara) is linked to this skeleton. Move it too?');
      await editor.answerLinkedOffer(false);
      await editor.waitSaved();
      const declined = await read();
      expect(declined.request.pose!.people[0].keypoints[1]!.x).toBeCloseTo(neck.x - 10, 0);
      expect(pixel(declined.map, 48, 60)).toBe(color);
    }, 60_000);

    it('adds, duplicates and reorders panels by drag and drop, with undo', async () => {
      await studio.go('Storyboard');
      const { storyboard } = studio;
      await storyboard.addPanel();
      await storyboard.duplicate(0);
      const start = await storyboard.order();
      expect(start).toHaveLength(3);
      expect(await storyboard.thumbnail(0)).toMatch(/^\/files\/[0-9a-f]{64}$/);

      await storyboard.dragCard(0, 2);
      const moved = [start[1], start[2], start[0]];
      await expect.poll(() => storyboard.order()).toEqual(moved);
      await expect.poll(panelIds).toEqual(moved);
      await studio.screenshot('06-storyboard');

      await storyboard.undo();
      await expect.poll(() => storyboard.order()).toEqual(start);
      await expect.poll(panelIds).toEqual(start);

      // delete is undoable too
      await storyboard.delete(1);
      await expect.poll(() => storyboard.order()).toEqual([start[0], start[2]]);
      await storyboard.undo();
      await expect.poll(() => storyboard.order()).toEqual(start);
      await expect.poll(panelIds).toEqual(start);
    }, 60_000);

    it('names a color that no region claims in a panel written elsewhere, and refuses to render it', async () => {
      // a panel made through the API (as a script or an older version might): red is a region, the
      // green bottom half is paint no region claims
      const story = (await api.stories.list()).find((s) => s.title === 'The Lighthouse')!;
      const panel = await api.panels.create({
        storyId: story.id,
        request: {
          prompt: 'a park',
          regions: [{ color: '#ff0000', prompt: 'a cat' }],
          width: 128,
          height: 128,
        },
      });
      const data = new Uint8Array(128 * 128 * 3);
      for (let i = 0; i < 128 * 64; i++) data[i * 3] = 255;
      for (let i = 128 * 64; i < 128 * 128; i++) data[i * 3 + 1] = 255;
      const map = Buffer.from(await encodePng({ width: 128, height: 128, data })).toString('base64');
      await api.panels.setSegmentMap({ panelId: panel.id, image: { data: map, mediaType: 'image/png' } });

      // the open storyboard takes in a panel made elsewhere, as its last card
      await studio.go('Storyboard');
      await expect.poll(() => studio.storyboard.order()).toContain(panel.id);
      const index = (await studio.storyboard.order()).indexOf(panel.id);
      await studio.storyboard.open(index);
      const { editor } = studio;
      await editor.waitUntilOpen();
      const issue = page.locator('.canvas-issues');
      await expect
        .poll(() => issue.textContent())
        .toContain('8192 px are painted in #00ff00, which no region uses');
      await editor.render();
      await expect.poll(() => editor.renderError()).toContain('#00ff00');
      expect(await editor.history.count()).toBe(0);
      await studio.screenshot('06b-unclaimed-color');
      // the fix is one click away: the paint becomes a free region that wants a prompt
      await issue.getByRole('button', { name: 'Make it a region' }).click();
      await expect.poll(() => editor.regions.count()).toBe(2);
      expect(await editor.regionColor(1)).toBe('#00ff00');
      await expect.poll(() => issue.count()).toBe(0);
      await editor.render();
      await expect.poll(() => editor.regionMessages(1)).toContain('Region #2 has no prompt');
      // nothing was lost: the stored map still has both colors
      const stored = await segmentMapOf(
        api,
        await api.panels.get({ id: panel.id }),
        server.origin,
        server.token,
      );
      expect([pixel(stored, 5, 5), pixel(stored, 5, 120)]).toEqual(['#ff0000', '#00ff00']);
    }, 60_000);

    it('follows a panel deleted elsewhere: its card and open editor go, and reordering still works', async () => {
      const story = (await api.stories.list()).find((s) => s.title === 'The Lighthouse')!;
      const order = async () => (await api.stories.get({ id: story.id })).panelIds;
      const doomed = await api.panels.create({
        storyId: story.id,
        request: { prompt: 'a quiet beach', regions: [], width: 128, height: 128 },
      });
      const { storyboard, editor } = studio;
      await studio.go('Storyboard');
      await expect.poll(() => storyboard.order()).toContain(doomed.id);
      await storyboard.open((await storyboard.order()).indexOf(doomed.id));
      await editor.waitUntilOpen();

      // a script deletes it while it is open here
      await api.panels.delete({ id: doomed.id });
      await page.getByText('The panel you had open was deleted in another window or by a script.').waitFor();
      await expect.poll(() => storyboard.order()).toEqual(await order());
      expect(await storyboard.order()).not.toContain(doomed.id);
      await studio.screenshot('06c-deleted-elsewhere');

      // the board and the server still agree: a reorder is accepted, and its undo brings no ghost back
      const before = await storyboard.order();
      await storyboard.dragCard(0, 1);
      const moved = [before[1], before[0], ...before.slice(2)];
      await expect.poll(() => storyboard.order()).toEqual(moved);
      await expect.poll(order).toEqual(moved);
      await storyboard.undo();
      await expect.poll(order).toEqual(before);
      expect(await storyboard.order()).toEqual(before);
    }, 60_000);

    it('opens Pages on a story without pages with a hint of what goes there, and the page had no errors', async () => {
      await studio.go('Pages');
      await page.getByRole('heading', { name: 'No pages yet' }).waitFor();
      await page.getByRole('main', { name: 'Page' }).getByRole('button', { name: '+ Add page' }).waitFor();
      await studio.screenshot('07-pages');
      expect(studio.errors.join('\n'), `refused requests:\n${studio.failedRequests.join('\n')}`).toBe('');
    });
  },
);

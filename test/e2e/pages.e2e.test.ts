/**
 * End to end through a real browser: comic pages and model folders. A story gets three panels rendered
 * on the default model, the embedded tiny model (tiny-sd, 128x128; 4 steps through the API, as a quick
 * way to have renders); then, in the page, a 2x2 page is laid out by dragging panels from the strip into
 * slots, lettered with a caption and a balloon whose tail is dragged, and exported as PNG, PDF and CBZ,
 * which are read back. Then model folders: a bad folder is refused with the file at fault, a random
 * model folder is imported and used, and the embedded model is chosen again.
 *
 * Screenshots go to `.tmp/e2e/`. Skipped, with a message, where /usr/bin/chromium is missing.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page as StudioPageRecord, Panel, StudioClient } from '../../electron/api/contract.js';
import { coverCrop, pageLayout, slotPixels } from '../../common/pages/layout.js';
import { createRandomModel } from '../../native-models/models/random-model.js';
import { readPdf, readZip } from '../helpers/archives.js';
import { CHROMIUM, hasChromium, SCREENSHOTS, startE2eStudio } from './harness.js';
import type { E2eStudio } from './harness.js';
import { StudioPage } from './pages/StudioPage.js';

if (!hasChromium) {
  console.warn(`pages e2e skipped: ${CHROMIUM} is missing (install it with: apt-get install -y chromium)`);
}

/** Creates a panel and renders it (4 steps at the model's size), waiting for the render. */
async function renderedPanel(api: StudioClient, storyId: string, prompt: string): Promise<Panel> {
  const panel = await api.panels.create({ storyId, request: { prompt, steps: 4 } });
  const job = await api.renders.renderPanel({ panelId: panel.id });
  const deadline = Date.now() + 150_000;
  for (;;) {
    const state = (await api.jobs.get({ id: job.id })).state;
    if (state === 'finished') break;
    if (state === 'failed' || state === 'cancelled' || Date.now() > deadline) {
      throw new Error(`the render of "${prompt}" ended ${state}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return api.panels.get({ id: panel.id });
}

describe.skipIf(!hasChromium)(
  `pages and models in browser mode${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing)`}`,
  () => {
    let e2e: E2eStudio;
    let studio: StudioPage;
    let api: StudioClient;
    let storyId: string;
    let panels: Panel[];

    /** The story's pages as the backend has them. */
    const serverPages = async (): Promise<StudioPageRecord[]> => api.pages.list({ storyId });

    beforeAll(async () => {
      e2e = await startE2eStudio('e2e-pages-renderer');
      api = e2e.api;
      studio = new StudioPage(e2e.page, SCREENSHOTS);
      storyId = (await api.stories.create({ title: 'The Lighthouse' })).id;
      panels = [];
      for (const prompt of ['a lighthouse at night', 'a girl on a pier', 'a cat by a lamp']) {
        panels.push(await renderedPanel(api, storyId, prompt));
      }
    }, 300_000);

    afterAll(async () => {
      await e2e?.close();
    });

    it('lays out a 2x2 page: panels dragged into slots, a slot cleared, template and margin changed', async () => {
      await studio.open(e2e.server.url);
      await studio.go('Pages');
      await e2e.page.getByRole('heading', { name: 'No pages yet' }).waitFor();
      const { pages } = studio;
      await pages.addPage();
      await pages.chooseTemplate('3 tiers');
      await expect.poll(() => pages.template()).toBe('three-tiers');
      await pages.chooseTemplate('2×2 grid');
      await expect.poll(() => pages.template()).toBe('grid-2x2');
      expect(await pages.stripPanels.count()).toBe(3);

      await pages.dragPanelToSlot(0, 0);
      await pages.dragPanelToSlot(1, 3);
      await pages.dragPanelToSlot(2, 1);
      await expect.poll(() => pages.slotPanel(3)).toBe(panels[1].id);
      await pages.clearSlot(1);
      await expect.poll(() => pages.slotPanel(1)).toBe('');
      // the backend follows: the page is stored with its template and slots
      await expect
        .poll(async () => (await serverPages())[0]?.slots)
        .toEqual([panels[0].id, null, null, panels[1].id]);
      expect((await serverPages())[0]).toMatchObject({ template: 'grid-2x2', size: 'a4', dpi: 300 });

      // the margin slider sets the page's margin in millimetres
      await pages.setMargin(10);
      await expect.poll(async () => (await serverPages())[0]?.marginMm).toBe(10);
    }, 90_000);

    it('letters the page: a caption and a balloon, text edited, balloon moved, its tail dragged', async () => {
      const { pages } = studio;
      await pages.addCaption();
      await pages.setLetteringText('Meanwhile, at the lighthouse…');
      await pages.addBalloon();
      await expect.poll(() => pages.lettering.count()).toBe(2);
      await pages.setLetteringText('Where is the lamp?');
      const before = await pages.letteringBox(1);
      await pages.moveLettering(1, { x: 0.05, y: 0.1 });
      await pages.dragTail(1, { x: 0.3, y: 0.45 });
      await expect
        .poll(async () => (await serverPages())[0]?.lettering.map((l) => [l.kind, l.text]))
        .toEqual([
          ['caption', 'Meanwhile, at the lighthouse…'],
          ['speech', 'Where is the lamp?'],
        ]);
      await expect.poll(async () => (await serverPages())[0]?.lettering[1].tail?.y).toBeCloseTo(0.45, 2);
      const balloon = (await serverPages())[0].lettering[1];
      expect(balloon.x).toBeCloseTo(before[0] + 0.05, 2);
      expect(balloon.y).toBeCloseTo(before[1] + 0.1, 2);
      expect(balloon.tail?.x).toBeCloseTo(0.3, 2);

      // a third lettering, deleted again
      await pages.addCaption();
      await expect.poll(() => pages.lettering.count()).toBe(3);
      await pages.deleteSelectedLettering();
      await expect.poll(() => pages.lettering.count()).toBe(2);
      await pages.selectLettering(1);
      const shot = await studio.screenshot('08-page-layout');
      expect(shot).toMatch(/08-page-layout\.png$/);
    }, 60_000);

    it('adds, reorders and deletes pages with undo; refuses to export an empty page, naming it', async () => {
      const { pages } = studio;
      await pages.addPage();
      await pages.chooseTemplate('Single');
      const [first, second] = await pages.order();
      await expect.poll(async () => (await serverPages()).map((p) => p.id)).toEqual([first, second]);

      await pages.dragPage(1, 0, false);
      await expect.poll(() => pages.order()).toEqual([second, first]);
      await expect.poll(async () => (await serverPages()).map((p) => p.id)).toEqual([second, first]);
      await pages.undo();
      await expect.poll(() => pages.order()).toEqual([first, second]);
      await expect.poll(async () => (await serverPages()).map((p) => p.id)).toEqual([first, second]);

      await pages.deletePage(1);
      await expect.poll(async () => (await serverPages()).map((p) => p.id)).toEqual([first]);
      await pages.undoFromToast();
      await expect.poll(async () => (await serverPages()).map((p) => p.id)).toEqual([first, second]);

      expect(await pages.exportError('PDF')).toContain('page 2 is empty; drag panels into its slots');
      await pages.selectPage(1);
      await pages.dragPanelToSlot(2, 0);
      await expect.poll(async () => (await serverPages())[1]?.slots).toEqual([panels[2].id]);
    }, 60_000);

    it('exports PNG at print resolution, a PDF of two pages and a CBZ, and says where they went', async () => {
      const { pages } = studio;
      await pages.selectPage(0);
      const out = join(e2e.dataDir, 'downloads');
      await mkdir(out, { recursive: true });

      const png = await pages.export('PNG');
      expect(png.suggestedFilename()).toBe('The Lighthouse - page 1.png');
      const pngPath = join(out, 'page.png');
      await png.saveAs(pngPath);
      const meta = await sharp(pngPath).metadata();
      expect([meta.format, meta.width, meta.height, meta.density]).toEqual(['png', 2480, 3508, 300]);
      expect(await pages.exportMessage()).toContain('Downloaded The Lighthouse - page 1.png (1 page');
      // the first slot shows the first panel's render, scaled to cover it: the mean colour of the
      // render's middle 16x16 pixels is the mean colour of where they land on the page
      const page = await sharp(pngPath).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const response = await fetch(`${e2e.server.origin}${panels[0].renders[0].image.url}`, {
        headers: { authorization: `Bearer ${e2e.server.token}` },
      });
      const render = await sharp(Buffer.from(await response.arrayBuffer()))
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const stored = (await serverPages())[0];
      const slot = slotPixels(pageLayout('grid-2x2', stored).slots[0], 300);
      const crop = coverCrop({ width: render.info.width, height: render.info.height }, slot);
      const scale = slot.width / crop.width;
      const onPage = (x: number, y: number) => ({
        x: Math.round(slot.x + (x - crop.x) * scale),
        y: Math.round(slot.y + (y - crop.y) * scale),
      });
      expect([render.info.width, render.info.height]).toEqual([128, 128]);
      const [from, to] = [onPage(56, 56), onPage(72, 72)];
      const mean = (img: typeof page, x0: number, y0: number, x1: number, y1: number) => {
        const sum = [0, 0, 0];
        for (let y = y0; y < y1; y++)
          for (let x = x0; x < x1; x++)
            for (let k = 0; k < 3; k++) sum[k] += img.data[(y * img.info.width + x) * img.info.channels + k];
        return sum.map((v) => v / ((x1 - x0) * (y1 - y0)));
      };
      const expected = mean(render, 56, 56, 72, 72);
      const actual = mean(page, from.x, from.y, to.x, to.y);
      for (let k = 0; k < 3; k++) expect(Math.abs(actual[k] - expected[k])).toBeLessThan(6);

      const pdf = await pages.export('PDF');
      expect(pdf.suggestedFilename()).toBe('The Lighthouse.pdf');
      const pdfBytes = new Uint8Array(await readFile((await pdf.path()) as string));
      expect(Buffer.from(pdfBytes.subarray(0, 5)).toString('latin1')).toBe('%PDF-');
      const read = readPdf(pdfBytes);
      expect(read.pageCount).toBe(2);
      expect(read.pages.map((p) => [p.image.width, p.image.height])).toEqual([
        [2480, 3508],
        [2480, 3508],
      ]);

      const cbz = await pages.export('CBZ');
      expect(cbz.suggestedFilename()).toBe('The Lighthouse.cbz');
      const entries = readZip(new Uint8Array(await readFile((await cbz.path()) as string)));
      expect(entries.map((e) => e.name)).toEqual(['001.png', '002.png', 'ComicInfo.xml']);
      expect(new TextDecoder().decode(entries[2].data)).toContain('<PageCount>2</PageCount>');
      await writeFile(join(SCREENSHOTS, 'exported-page-1.png'), await readFile(pngPath));
      await studio.screenshot('09-pages-exported');
    }, 240_000);

    it('imports model folders: a bad one is refused with the file at fault, a good one is listed and used', async () => {
      await studio.go('Library');
      const { models } = studio;
      await models.section.scrollIntoViewIfNeeded();
      await expect.poll(() => models.names()).toEqual(['tiny-sd']);
      expect(await models.inUse()).toBe('tiny-sd');

      const bad = join(e2e.dataDir, 'not-a-model');
      await mkdir(bad);
      await writeFile(join(bad, 'notes.txt'), 'not a model');
      await models.importFolder(bad);
      expect(await models.message()).toBe(
        'The folder is not a model MSP Studio can use: scheduler/scheduler_config.json: is missing',
      );
      expect(await models.names()).toEqual(['tiny-sd']);

      const good = await createRandomModel(join(e2e.dataDir, 'my-comic-model'));
      await models.importFolder(good);
      await expect.poll(() => models.names()).toEqual(['tiny-sd', 'my-comic-model']);
      expect(await models.message()).toContain('Imported my-comic-model');
      await models.use('my-comic-model');
      await expect.poll(() => studio.modelBadge()).toContain('my-comic-model · CPU');
      expect((await api.models.getInfo()).name).toBe('my-comic-model');
      await studio.screenshot('10-models');

      // back to the default, and the imported entry removed (its files stay)
      await models.use('tiny-sd');
      await models.remove('my-comic-model');
      expect(await models.names()).toEqual(['tiny-sd']);
      expect((await readFile(join(good, 'model_index.json'), 'utf8')).length).toBeGreaterThan(0);
      // the refusals above (an empty page, a bad model folder) are answered 400, which Chromium logs;
      // anything else is a real error
      expect(studio.errors.filter((e) => !e.includes('the server responded with a status of 400'))).toEqual(
        [],
      );
      expect(studio.errors).toHaveLength(2);
    }, 120_000);
  },
);

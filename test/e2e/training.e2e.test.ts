/**
 * End to end through a real browser: teaching a cast to the model on the Training screen. Two subjects
 * get three pictures each of the identity set (world/identity.ts), uploaded through their cards; a cast
 * of the two is refused while one subject has too few pictures, then trains a few steps on the embedded
 * tiny model (progress, loss curve, sample pictures, cut-outs), becomes a model of the library, and
 * renders a two-subject panel. Screenshots of the Training screen go to `.tmp/e2e/`.
 *
 * Skipped, with a message, where /usr/bin/chromium is missing (`apt-get install -y chromium`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImageRgba } from '../../native-models/image/image.js';
import { encodePng } from '../../native-models/image/png.js';
import { identityReferenceImages } from '../../native-models/world/identity.js';
import { CHROMIUM, hasChromium, SCREENSHOTS, startE2eStudio } from './harness.js';
import type { E2eStudio } from './harness.js';
import { StudioPage } from './pages/StudioPage.js';
import { TrainingPage } from './pages/TrainingPage.js';

if (!hasChromium) {
  console.warn(`training e2e skipped: ${CHROMIUM} is missing (install it with: apt-get install -y chromium)`);
}

/** Reference pictures `from`..`from + count` of identity-set subject `index`, as PNG files. */
async function references(index: number, count: number, from = 0) {
  return Promise.all(
    identityReferenceImages(index)
      .slice(from, from + count)
      .map(async (scene, i) => ({
        name: `subject-${index}-${from + i}.png`,
        mimeType: 'image/png',
        buffer: Buffer.from(await encodePng(scene.image)),
      })),
  );
}

/** Tiny settings: the tiny model trains them in a minute or two on a busy machine. */
const QUICK = { steps: 4, classImages: 1, segmentationSteps: 1, previewEvery: 2, batch: 2 };

describe.skipIf(!hasChromium)(
  `training in browser mode${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing)`}`,
  () => {
    let e2e: E2eStudio;
    let studio: StudioPage;
    let training: TrainingPage;

    beforeAll(async () => {
      e2e = await startE2eStudio('e2e-training-renderer');
      studio = new StudioPage(e2e.page, SCREENSHOTS);
      training = new TrainingPage(e2e.page);
    }, 180_000);

    afterAll(async () => {
      await e2e?.close();
    });

    it('refuses a cast whose subject has fewer than 3 pictures, saying which, before any training', async () => {
      await studio.open(e2e.server.url);
      await studio.createStory('The Harbour');
      await studio.waitForModel();
      await studio.go('Library');
      const { library } = studio;
      await library.createSubject('Captain', 'man');
      await library.addReferenceFiles('Captain', await references(0, 3));
      await expect.poll(() => library.referenceCount('Captain')).toBe(3);
      await library.createSubject('Mog', 'cat');
      await library.addReferenceFiles('Mog', await references(4, 2));
      await expect.poll(() => library.referenceCount('Mog')).toBe(2);
      await library.createCast('Harbour cast');
      await library.addToCast('Harbour cast', 'Captain');
      await library.addToCast('Harbour cast', 'Mog');
      await library.useCastForStory('Harbour cast');

      await training.open();
      await training.chooseCast('Harbour cast');
      await expect.poll(() => training.subjects.count()).toBe(2);
      await expect
        .poll(() => training.problems())
        .toContain("Subject 'Mog' has 2 reference images; a subject needs at least 3");
      expect(await training.startButton.isDisabled()).toBe(true);
      await studio.screenshot('training-01-refused');
      // nothing was queued
      expect(await e2e.api.jobs.list()).toEqual([]);
    }, 120_000);

    it('trains the cast: progress with phases, the loss curve, cut-outs, sample pictures, the model', async () => {
      const { library } = studio;
      await studio.go('Library');
      await library.addReferenceFiles('Mog', await references(4, 1, 2));
      await expect.poll(() => library.referenceCount('Mog')).toBe(3);

      await training.open();
      await expect.poll(() => training.problems()).toBe('');
      await expect.poll(() => training.startButton.isEnabled()).toBe(true);
      await training.setSettings(QUICK);
      expect(await training.setting('steps')).toBe('4');
      await training.recordProgress();
      const started = Date.now();
      await training.start();

      // what the training sees: a cut-out per reference picture, shown as the data is prepared
      await expect.poll(() => training.cutOuts.count(), { timeout: 120_000 }).toBe(6);
      await expect.poll(() => training.imagesLoaded(training.cutOuts)).toBe(true);
      // the loss curve grows step by step
      await expect.poll(() => training.lossPoints(), { timeout: 240_000 }).toBeGreaterThanOrEqual(2);
      await studio.screenshot('training-02-running');
      // the curve and the cut-outs are still there after a reload of the page while it trains
      const seenBefore = await training.seen();
      await e2e.page.reload();
      await training.open();
      expect(await training.lossPoints()).toBeGreaterThanOrEqual(2);
      expect(await training.cutOuts.count()).toBe(6);
      await training.recordProgress();
      await expect.poll(() => training.previews.count(), { timeout: 240_000 }).toBe(1);

      await training.waitFinished(480_000);
      const seconds = (Date.now() - started) / 1000;
      console.log(`training e2e: 4 steps on the tiny model in ${seconds.toFixed(0)} s`);
      expect(await training.phase()).toBe('Done');
      expect(await training.lossPoints()).toBe(4);
      expect(await training.imagesLoaded(training.previews.locator('img'))).toBe(true);
      await expect
        .poll(() => training.result.textContent())
        .toContain('Trained model ready: Harbour cast (trained)');
      const seen = [...seenBefore, ...(await training.seen())];
      expect(seen).toContain('Cutting out the subjects');
      expect(seen).toContain('Teaching the model the subjects');
      expect(seen.some((t) => /step 4\/4 · loss \d/.test(t))).toBe(true);
      await studio.screenshot('training-03-finished');

      // the backend agrees: a finished training and a model of the cast
      const cast = (await e2e.api.casts.list()).find((c) => c.name === 'Harbour cast')!;
      const done = await e2e.api.training.get({ castId: cast.id });
      expect(done).toMatchObject({ state: 'finished', settings: QUICK });
      const model = (await e2e.api.models.list()).find((m) => m.id === done?.modelId);
      const tokens = new Map((await e2e.api.subjects.list()).map((s) => [s.name, s.token]));
      expect(model?.cast?.subjects.map((s) => [s.name, s.identifier, s.classNoun])).toEqual([
        ['Captain', tokens.get('Captain'), 'man'],
        ['Mog', tokens.get('Mog'), 'cat'],
      ]);
      expect(model?.details?.hasSegmentation).toBe(true);

      // the library says who is in which cast and trained model
      await studio.go('Library');
      await expect
        .poll(() => library.subject('Mog').getByTestId('subject-memberships').textContent())
        .toBe('In Harbour cast · Trained in Harbour cast (trained)');
      await studio.screenshot('training-05-library');
    }, 600_000);

    it('renders a two-subject panel with the trained model', async () => {
      const { storyboard, editor } = studio;
      await studio.go('Storyboard');
      await storyboard.addPanel();
      await storyboard.open(0);
      await editor.waitUntilOpen();
      await editor.chooseModel('Harbour cast (trained)');
      await expect.poll(() => studio.modelBadge(), { timeout: 120_000 }).toMatch(/^harbour-cast-/);

      // Captain on the left, Mog on the right, each in a region of its own
      await (await editor.castMember('Captain')).click();
      await editor.pressKey('r');
      await editor.drag([
        { x: 8, y: 24 },
        { x: 60, y: 120 },
      ]);
      await editor.setRegionPrompt(0, 'waving');
      await (await editor.castMember('Mog')).click();
      await editor.drag([
        { x: 72, y: 64 },
        { x: 120, y: 120 },
      ]);
      await editor.setRegionPrompt(1, 'sitting');
      await editor.setPrompt('a man and a cat in a park');
      await editor.setSteps(4);
      await e2e.page.getByLabel('SAL weight').fill('0.5');
      await editor.waitSaved();
      await editor.render();
      await editor.waitForRenders(1, 240_000);
      expect(await editor.renderError()).toBeNull();
      await studio.screenshot('training-04-panel');

      const story = (await e2e.api.stories.list())[0];
      const [render] = (await e2e.api.panels.get({ id: story.panelIds[0] })).renders;
      const tokens = new Map((await e2e.api.subjects.list()).map((s) => [s.name, s.token]));
      const [captain, mog] = [tokens.get('Captain'), tokens.get('Mog')];
      expect(render.modelName).toMatch(/^harbour-cast-/);
      // the regions name the subjects by the identifiers and class nouns the model learnt, and SAL
      // checks each region for its identifier (a class of the cast's segmentation model)
      expect(render.request.segments.map((s) => [s.prompt, s.subject])).toEqual([
        [`${captain} man waving`, captain],
        [`${mog} cat sitting`, mog],
      ]);
      expect(render.request.sal.weight).toBe(0.5);
      const bytes = await fetch(`${e2e.server.origin}${render.image.url}`, {
        headers: { authorization: `Bearer ${e2e.server.token}` },
      });
      const image = await decodeImageRgba(new Uint8Array(await bytes.arrayBuffer()));
      expect([image.width, image.height]).toEqual([128, 128]);
      expect(studio.errors).toEqual([]);
    }, 300_000);
  },
);

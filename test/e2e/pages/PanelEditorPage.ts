/**
 * The panel editor. Canvas gestures are given in panel (image) pixels; the page object converts them to
 * screen positions with the viewport the canvas reports (`data-zoom`, `data-pan`), so tests read like
 * "drag from (10, 40) to (30, 40)" whatever the window size.
 */
import type { Locator, Page } from 'playwright-core';

export type Tool = 'Brush' | 'Eraser' | 'Rectangle' | 'Lasso' | 'Fill' | 'Move' | 'Pose';

export interface ImagePoint {
  x: number;
  y: number;
}

export class PanelEditorPage {
  constructor(private readonly page: Page) {}

  get canvas(): Locator {
    return this.page.getByTestId('panel-canvas');
  }

  async waitUntilOpen(): Promise<void> {
    await this.canvas.waitFor();
    // fitted to the window (a zoom other than the initial 1)
    await this.page.locator('[data-testid="panel-canvas"]:not([data-zoom="1.0000"])').waitFor();
  }

  /** The screen position of a panel pixel coordinate. */
  async toScreen(p: ImagePoint): Promise<{ x: number; y: number }> {
    const { zoom, panX, panY, left, top } = await this.canvas.evaluate((el) => {
      const [px, py] = (el.getAttribute('data-pan') ?? '0,0').split(',').map(Number);
      const rect = el.getBoundingClientRect();
      return {
        zoom: Number(el.getAttribute('data-zoom')),
        panX: px,
        panY: py,
        left: rect.left,
        top: rect.top,
      };
    });
    return { x: left + p.x * zoom + panX, y: top + p.y * zoom + panY };
  }

  /** The canvas viewport: screen = image * zoom + pan. */
  async viewport(): Promise<{ zoom: number; panX: number; panY: number }> {
    const zoom = Number(await this.canvas.getAttribute('data-zoom'));
    const [panX, panY] = ((await this.canvas.getAttribute('data-pan')) ?? '0,0').split(',').map(Number);
    return { zoom, panX, panY };
  }

  async hover(p: ImagePoint): Promise<void> {
    const s = await this.toScreen(p);
    await this.page.mouse.move(s.x, s.y, { steps: 3 });
  }

  async selectTool(tool: Tool): Promise<void> {
    await this.page
      .getByRole('toolbar', { name: 'Tools' })
      .getByRole('button', { name: new RegExp(`^${tool}`) })
      .click();
  }

  async activeTool(): Promise<string> {
    return (await this.page.locator('.tool[aria-pressed="true"] span').textContent()) ?? '';
  }

  async pressKey(key: string): Promise<void> {
    await this.page.locator('body').press(key);
  }

  /** Presses at the first point, moves through the others, releases at the last. */
  async drag(points: ImagePoint[], steps = 4): Promise<void> {
    const screen = [];
    for (const p of points) screen.push(await this.toScreen(p));
    await this.page.mouse.move(screen[0].x, screen[0].y);
    await this.page.mouse.down();
    for (const s of screen.slice(1)) await this.page.mouse.move(s.x, s.y, { steps });
    await this.page.mouse.up();
  }

  async click(p: ImagePoint): Promise<void> {
    const s = await this.toScreen(p);
    await this.page.mouse.click(s.x, s.y);
  }

  get regions(): Locator {
    return this.page.getByTestId('region');
  }

  async addFreeRegion(): Promise<void> {
    await this.page.getByRole('button', { name: '+ free region' }).click();
  }

  async selectRegion(index: number): Promise<void> {
    await this.regions.nth(index).locator('.index').click();
  }

  async regionColor(index: number): Promise<string> {
    return this.regions.nth(index).locator('input[type="color"]').inputValue();
  }

  /** The messages shown under a region (errors and hints). */
  async regionMessages(index: number): Promise<string> {
    return (await this.regions.nth(index).locator('.error-text, .hint').allTextContents()).join(' | ');
  }

  /** Whether a region is marked as blocking the render. */
  async regionInvalid(index: number): Promise<boolean> {
    return ((await this.regions.nth(index).getAttribute('class')) ?? '').split(' ').includes('invalid');
  }

  async setRegionPrompt(index: number, text: string): Promise<void> {
    await this.page.getByLabel(`Prompt of region ${index + 1}`).fill(text);
  }

  async bindRegion(index: number, subjectName: string): Promise<void> {
    const select = this.page.getByLabel(`Who region ${index + 1} shows`);
    await select.selectOption({ label: await this.optionLabel(select, subjectName) });
  }

  private async optionLabel(select: Locator, startsWith: string): Promise<string> {
    const labels = await select.locator('option').allTextContents();
    const label = labels.find((l) => l.startsWith(startsWith));
    if (!label) throw new Error(`no option starting with "${startsWith}" in ${labels.join(', ')}`);
    return label;
  }

  async setPrompt(text: string): Promise<void> {
    await this.page.getByLabel('Panel prompt').fill(text);
  }

  async setBackgroundPrompt(text: string): Promise<void> {
    await this.page.getByLabel('Background prompt').fill(text);
  }

  async addSkeleton(template = 'standing'): Promise<void> {
    await this.page.getByLabel('Pose of the new skeleton').selectOption(template);
    await this.page.getByRole('button', { name: '+ Add skeleton' }).click();
  }

  async selectedPerson(): Promise<string | null> {
    const pressed = this.page
      .getByRole('group', { name: 'Skeletons' })
      .locator('button[aria-pressed="true"]');
    return (await pressed.count()) > 0 ? pressed.textContent() : null;
  }

  async selectPerson(name: string): Promise<void> {
    const button = this.page
      .getByRole('group', { name: 'Skeletons' })
      .getByRole('button', { name, exact: true });
    if ((await button.getAttribute('aria-pressed')) !== 'true') await button.click();
  }

  /** Links the selected skeleton to the region whose option starts with `startsWith` ("#1"), or "none". */
  async linkSelectedSkeleton(startsWith: string): Promise<void> {
    const select = this.page.getByLabel(/^Region linked to Person \d+$/);
    await select.selectOption({ label: await this.optionLabel(select, startsWith) });
  }

  /** The link badge of a region row ("P1"), or null. */
  async regionLink(index: number): Promise<string | null> {
    const badge = this.regions.nth(index).getByTestId('region-link');
    return (await badge.count()) > 0 ? badge.textContent() : null;
  }

  /** The offer to move a linked partner, or null when none is shown. */
  async linkedOffer(): Promise<string | null> {
    const offer = this.page.getByTestId('linked-offer');
    return (await offer.count()) > 0 ? offer.locator('span').textContent() : null;
  }

  async answerLinkedOffer(accept: boolean): Promise<void> {
    const offer = this.page.getByTestId('linked-offer');
    await offer.getByRole('button', { name: accept ? /^Move / : 'Not now' }).click();
    await offer.waitFor({ state: 'detached' });
  }

  async hideJoint(name: string): Promise<void> {
    await this.page
      .getByRole('group', { name: /^Joints/ })
      .getByRole('button', { name, exact: true })
      .click();
  }

  async useAsScaffold(): Promise<void> {
    await this.page.getByRole('button', { name: 'Use as scaffold' }).click();
    await this.page.getByRole('button', { name: 'Scaffold in use' }).waitFor();
  }

  /** Picks a flat scaffolding colour (#rrggbb) in the settings; the summary beside it follows. */
  async setScaffoldColor(hex: string): Promise<void> {
    await this.page.getByLabel('Scaffolding colour').fill(hex);
    await this.page.getByText(`Flat ${hex}`).waitFor();
  }

  /** Clicks "Open file location"; the message it shows (a path in browser mode). */
  async openFileLocation(): Promise<string> {
    await this.page.getByRole('button', { name: 'Open file location' }).click();
    const message = this.page.getByTestId('render-location');
    await message.waitFor();
    return (await message.textContent()) ?? '';
  }

  async reuseSettings(): Promise<void> {
    await this.page.getByRole('button', { name: 'Reuse settings' }).click();
  }

  async openSettings(): Promise<void> {
    const details = this.page.locator('details.settings');
    if ((await details.getAttribute('open')) === null) await details.locator('summary').click();
  }

  async setSteps(steps: number): Promise<void> {
    await this.openSettings();
    await this.page.getByTestId('steps').fill(String(steps));
    await this.page.getByTestId('steps').blur();
  }

  /** Picks the model renders use in the editor's Model section (by the start of its label). */
  async chooseModel(startsWith: string): Promise<void> {
    const select = this.page.getByLabel('Model for renders');
    await select.selectOption({ label: await this.optionLabel(select, startsWith) });
  }

  async castMember(name: string): Promise<Locator> {
    return this.page
      .getByRole('region', { name: 'Cast' })
      .getByRole('button', { name: new RegExp(`^${name}`) });
  }

  /** Waits until the editor has sent every edit to the backend. */
  async waitSaved(): Promise<void> {
    await this.page
      .getByTestId('save-status')
      .filter({ hasText: /^Saved$/ })
      .waitFor();
    // a save may be scheduled but not started yet: give the debounce time, then check again
    await this.page.waitForTimeout(600);
    await this.page
      .getByTestId('save-status')
      .filter({ hasText: /^Saved$/ })
      .waitFor();
  }

  /**
   * Starts recording every progress text the render bar shows and every picture the canvas shows
   * (checked with {@link progressSeen} and {@link imagesSeen}).
   */
  async recordProgress(): Promise<void> {
    // runs in the page: a MutationObserver sees every text React commits, however short-lived (a string
    // because the Node test program has no DOM types; evaluate() is not subject to the page's CSP)
    await this.page.evaluate(`(() => {
      const seen = [];
      const images = [];
      window.__progress = seen;
      window.__images = images;
      const record = () => {
        const text = document.querySelector('[data-testid="progress-text"]')?.textContent;
        if (text && seen[seen.length - 1] !== text) seen.push(text);
        const image = document.querySelector('[data-testid="panel-canvas"]')?.getAttribute('data-image');
        if (image && images[images.length - 1] !== image) images.push(image);
      };
      new MutationObserver(record).observe(document.body, {
        subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-image'],
      });
    })()`);
  }

  async progressSeen(): Promise<string[]> {
    return (await this.page.evaluate('window.__progress ?? []')) as string[];
  }

  /** The canvas pictures (file URLs) shown since {@link recordProgress}, in order. */
  async imagesSeen(): Promise<string[]> {
    return (await this.page.evaluate('window.__images ?? []')) as string[];
  }

  async render(): Promise<void> {
    await this.page.keyboard.press('Control+Enter');
  }

  get history(): Locator {
    return this.page.getByTestId('history-thumb');
  }

  async waitForRenders(count: number, timeout = 120_000): Promise<void> {
    await this.history.nth(count - 1).waitFor({ timeout });
  }

  async renderError(): Promise<string | null> {
    const error = this.page.getByTestId('render-error');
    return (await error.count()) > 0 ? error.textContent() : null;
  }

  async undo(): Promise<void> {
    await this.page.keyboard.press('Control+z');
  }

  async redo(): Promise<void> {
    await this.page.keyboard.press('Control+Shift+z');
  }

  async undoTitle(): Promise<string> {
    return (await this.page.locator('.undo-row button').first().getAttribute('title')) ?? '';
  }
}

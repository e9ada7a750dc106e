/**
 * The Pages place: the page list, the page canvas (an SVG in page coordinates), the panel strip, the
 * layout and lettering controls, and export. Positions on the canvas are given as page fractions
 * (0..1 of its width and height), so tests read "drag the tail to (0.3, 0.45)" whatever the window size.
 */
import type { Download, Locator, Page } from 'playwright-core';

export interface PagePoint {
  x: number;
  y: number;
}

export class PagesPage {
  constructor(private readonly page: Page) {}

  get canvas(): Locator {
    return this.page.getByTestId('page-canvas');
  }

  get thumbs(): Locator {
    return this.page.getByTestId('page-thumb');
  }

  /** Page ids in the order the list shows them. */
  async order(): Promise<string[]> {
    return this.thumbs.evaluateAll((items) => items.map((i) => i.getAttribute('data-page-id') ?? ''));
  }

  /** Adds a page (from the empty state or the list) and waits until it is shown. */
  async addPage(): Promise<void> {
    const before = await this.thumbs.count();
    await this.page.getByRole('button', { name: '+ Add page' }).first().click();
    await this.thumbs.nth(before).waitFor();
    await this.canvas.waitFor();
  }

  async selectPage(index: number): Promise<void> {
    await this.thumbs
      .nth(index)
      .getByRole('button', { name: `Show page ${index + 1}` })
      .click();
  }

  async deletePage(index: number): Promise<void> {
    await this.page.getByRole('button', { name: `Delete page ${index + 1}`, exact: true }).click();
  }

  /** The "Undo" of the toast a deletion shows. */
  async undoFromToast(): Promise<void> {
    await this.page
      .getByRole('status')
      .filter({ hasText: 'Page deleted' })
      .getByRole('button', { name: 'Undo' })
      .click();
  }

  async undo(): Promise<void> {
    await this.page
      .getByRole('complementary', { name: 'Pages of the story' })
      .getByRole('button', { name: 'Undo' })
      .click();
  }

  /** Drags thumbnail `from` onto the lower half of thumbnail `to` (so it lands after it) or the upper half. */
  async dragPage(from: number, to: number, after: boolean): Promise<void> {
    const target = this.thumbs.nth(to);
    const box = await target.boundingBox();
    if (!box) throw new Error(`page ${to} is not visible`);
    await this.thumbs.nth(from).dragTo(target, {
      targetPosition: { x: box.width / 2, y: box.height * (after ? 0.8 : 0.2) },
    });
  }

  async chooseTemplate(label: string): Promise<void> {
    await this.page
      .getByRole('group', { name: 'Templates' })
      .getByRole('button', { name: label, exact: true })
      .click();
  }

  async template(): Promise<string | null> {
    return this.canvas.getAttribute('data-template');
  }

  /** Moves the margin slider with the arrow keys (0.5 mm a step), as a keyboard user does. */
  async setMargin(mm: number): Promise<void> {
    const slider = this.page.getByLabel('Margin (mm)');
    const steps = Math.round((mm - Number(await slider.inputValue())) / 0.5);
    await slider.focus();
    for (let i = 0; i < Math.abs(steps); i++) await slider.press(steps > 0 ? 'ArrowRight' : 'ArrowLeft');
  }

  slot(index: number): Locator {
    return this.page.locator(`[data-testid="page-slot"][data-slot="${index}"]`);
  }

  /** The panel id a slot shows ('' when empty). */
  async slotPanel(index: number): Promise<string> {
    return (await this.slot(index).getAttribute('data-panel-id')) ?? '';
  }

  get stripPanels(): Locator {
    return this.page.getByTestId('strip-panel');
  }

  /** Drags the panel at `index` of the strip into a slot, as a user does. */
  async dragPanelToSlot(index: number, slot: number): Promise<void> {
    await this.stripPanels.nth(index).dragTo(this.slot(slot));
  }

  async clearSlot(slot: number): Promise<void> {
    await this.slot(slot).hover();
    await this.page.getByRole('button', { name: `Clear slot ${slot + 1}`, exact: true }).click();
  }

  async addCaption(): Promise<void> {
    await this.page.getByRole('button', { name: '+ Caption' }).click();
  }

  async addBalloon(): Promise<void> {
    await this.page.getByRole('button', { name: '+ Balloon' }).click();
  }

  get lettering(): Locator {
    return this.page.getByTestId('lettering');
  }

  /** A lettering's box as page fractions [x, y, width, height]. */
  async letteringBox(index: number): Promise<[number, number, number, number]> {
    const box = ((await this.lettering.nth(index).getAttribute('data-box')) ?? '').split(',').map(Number);
    return box as [number, number, number, number];
  }

  /** The screen position of a page point. */
  async toScreen(p: PagePoint): Promise<{ x: number; y: number }> {
    const box = await this.canvas.boundingBox();
    if (!box) throw new Error('the page canvas is not visible');
    return { x: box.x + p.x * box.width, y: box.y + p.y * box.height };
  }

  private async dragScreen(from: { x: number; y: number }, to: { x: number; y: number }): Promise<void> {
    await this.page.mouse.move(from.x, from.y);
    await this.page.mouse.down();
    await this.page.mouse.move(to.x, to.y, { steps: 6 });
    await this.page.mouse.up();
  }

  /** Clicks inside a lettering (its box centre) to select it. */
  async selectLettering(index: number): Promise<void> {
    const [x, y, w, h] = await this.letteringBox(index);
    const at = await this.toScreen({ x: x + w / 2, y: y + h / 2 });
    await this.page.mouse.click(at.x, at.y);
  }

  /** Drags a lettering by its middle, by `delta` page fractions. */
  async moveLettering(index: number, delta: PagePoint): Promise<void> {
    const [x, y, w, h] = await this.letteringBox(index);
    const from = { x: x + w / 2, y: y + h / 2 };
    await this.dragScreen(
      await this.toScreen(from),
      await this.toScreen({ x: from.x + delta.x, y: from.y + delta.y }),
    );
  }

  /** Drags the tail handle of a balloon to a page point. */
  async dragTail(index: number, to: PagePoint): Promise<void> {
    const handle = this.lettering.nth(index).getByTestId('tail-handle');
    const box = await handle.boundingBox();
    if (!box) throw new Error('the balloon has no tail handle');
    await this.dragScreen({ x: box.x + box.width / 2, y: box.y + box.height / 2 }, await this.toScreen(to));
  }

  async setLetteringText(text: string): Promise<void> {
    await this.page.getByLabel('Lettering text').fill(text);
  }

  async deleteSelectedLettering(): Promise<void> {
    await this.page.getByRole('button', { name: /^Delete (caption|balloon)$/ }).click();
  }

  /** Clicks an export button and returns the browser download it starts. */
  async export(format: 'PNG' | 'PDF' | 'CBZ'): Promise<Download> {
    const [download] = await Promise.all([
      this.page.waitForEvent('download', { timeout: 120_000 }),
      this.page.getByRole('button', { name: `Export ${format}` }).click(),
    ]);
    return download;
  }

  /** Clicks an export button that is expected to fail, and returns the error shown. */
  async exportError(format: 'PNG' | 'PDF' | 'CBZ'): Promise<string> {
    await this.page.getByRole('button', { name: `Export ${format}` }).click();
    const error = this.page.getByTestId('export-error');
    await error.waitFor({ timeout: 60_000 });
    return (await error.textContent()) ?? '';
  }

  async exportMessage(): Promise<string> {
    const message = this.page.getByTestId('export-message');
    await message.waitFor({ timeout: 60_000 });
    return (await message.textContent()) ?? '';
  }
}

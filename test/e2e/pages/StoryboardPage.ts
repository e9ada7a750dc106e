/** The storyboard: panel cards in reading order. */
import type { Locator, Page } from 'playwright-core';

export class StoryboardPage {
  constructor(private readonly page: Page) {}

  get cards(): Locator {
    return this.page.getByTestId('panel-card');
  }

  /** Panel ids in the order the cards show them. */
  async order(): Promise<string[]> {
    return this.cards.evaluateAll((cards) => cards.map((c) => c.getAttribute('data-panel-id') ?? ''));
  }

  async addPanel(): Promise<void> {
    const before = await this.cards.count();
    await this.page.locator('.board-toolbar').getByRole('button', { name: '+ Add panel' }).click();
    await this.cards.nth(before).waitFor();
  }

  async duplicate(index: number): Promise<void> {
    const before = await this.cards.count();
    await this.cards.nth(index).getByRole('button', { name: 'Duplicate' }).click();
    await this.cards.nth(before).waitFor();
  }

  async delete(index: number): Promise<void> {
    await this.cards.nth(index).getByRole('button', { name: 'Delete' }).click();
  }

  async open(index: number): Promise<void> {
    await this.cards.nth(index).getByRole('button', { name: 'Open', exact: true }).click();
  }

  /** Drags card `from` onto the right half of card `to` (so it lands after it). */
  async dragCard(from: number, to: number): Promise<void> {
    const target = this.cards.nth(to);
    const box = await target.boundingBox();
    if (!box) throw new Error(`card ${to} is not visible`);
    await this.cards.nth(from).dragTo(target, {
      targetPosition: { x: box.width * 0.8, y: box.height * 0.3 },
    });
  }

  async undo(): Promise<void> {
    await this.page.locator('.board-toolbar').getByRole('button', { name: 'Undo' }).click();
  }

  async redo(): Promise<void> {
    await this.page.locator('.board-toolbar').getByRole('button', { name: 'Redo' }).click();
  }

  /** The image a card shows: its latest render's URL, or null. */
  async thumbnail(index: number): Promise<string | null> {
    const img = this.cards.nth(index).locator('.card-image img');
    if ((await img.count()) === 0) return null;
    return img.getAttribute('src');
  }
}

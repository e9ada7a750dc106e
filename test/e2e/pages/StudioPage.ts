/**
 * The studio window as a whole: the top bar (story picker, the four places) and screenshots. Screens
 * have their own page objects; tests talk to those, never to selectors.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { LibraryPage } from './LibraryPage.js';
import { ModelsPage } from './ModelsPage.js';
import { PagesPage } from './PagesPage.js';
import { PanelEditorPage } from './PanelEditorPage.js';
import { StoryboardPage } from './StoryboardPage.js';

export type Place = 'Storyboard' | 'Panel' | 'Library' | 'Pages';

export class StudioPage {
  readonly storyboard: StoryboardPage;
  readonly editor: PanelEditorPage;
  readonly library: LibraryPage;
  readonly pages: PagesPage;
  readonly models: ModelsPage;
  /** Console errors and uncaught exceptions of the page (a test asserts there are none). */
  readonly errors: string[] = [];
  /** Responses with status >= 400, with what was sent (for the message when `errors` is not empty). */
  readonly failedRequests: string[] = [];

  constructor(
    readonly page: Page,
    private readonly screenshotDir: string,
  ) {
    this.storyboard = new StoryboardPage(page);
    this.editor = new PanelEditorPage(page);
    this.library = new LibraryPage(page);
    this.pages = new PagesPage(page);
    this.models = new ModelsPage(page);
    page.on('pageerror', (error) => this.errors.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const { url } = message.location();
      this.errors.push(`console: ${message.text()}${url ? ` (${url})` : ''}`);
    });
    // refused requests (some are expected: a refusal the UI shows), to tell which one an error is about
    page.on('response', (response) => {
      if (response.status() < 400) return;
      const request = response.request();
      const body = request.postData()?.slice(0, 400) ?? '';
      this.failedRequests.push(`${response.status()} ${request.method()} ${response.url()} ${body}`.trim());
    });
  }

  /** Opens the address the server printed (it sets the session cookie and drops the token). */
  async open(url: string): Promise<void> {
    await this.page.goto(url);
    await this.page.getByRole('navigation', { name: 'Places' }).waitFor();
  }

  async createStory(title: string): Promise<void> {
    const input = this.page.getByLabel('New story title');
    if (!(await input.isVisible())) await this.page.getByRole('button', { name: '+ New story' }).click();
    await input.fill(title);
    await this.page.getByRole('button', { name: 'Create story' }).click();
    await this.page.getByRole('combobox', { name: 'Story' }).waitFor();
  }

  async currentStory(): Promise<string> {
    const select = this.page.getByRole('combobox', { name: 'Story' });
    return (await select.locator('option:checked').textContent()) ?? '';
  }

  async go(place: Place): Promise<void> {
    await this.page.getByRole('navigation', { name: 'Places' }).getByRole('button', { name: place }).click();
  }

  /** The name of the place shown (the pressed tab). */
  async place(): Promise<string> {
    return (await this.page.locator('.places button[aria-current="page"]').textContent()) ?? '';
  }

  /** The model badge text, e.g. "tiny-random · CPU". */
  async modelBadge(): Promise<string> {
    return (await this.page.locator('.model-badge').textContent()) ?? '';
  }

  async waitForModel(): Promise<void> {
    await this.page.locator('.model-badge', { hasText: '·' }).waitFor({ timeout: 60_000 });
  }

  /** Saves a screenshot of the window as `<dir>/<name>.png` and returns its path. */
  async screenshot(name: string): Promise<string> {
    await mkdir(this.screenshotDir, { recursive: true });
    const path = join(this.screenshotDir, `${name}.png`);
    await this.page.screenshot({ path });
    return path;
  }
}

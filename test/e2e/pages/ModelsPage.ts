/** The Models section of the library: the model list, import by path, choosing the model in use. */
import type { Locator, Page } from 'playwright-core';

export class ModelsPage {
  constructor(private readonly page: Page) {}

  get section(): Locator {
    return this.page.getByRole('region', { name: 'Models' });
  }

  get entries(): Locator {
    return this.page.getByTestId('model-entry');
  }

  entry(name: string): Locator {
    return this.entries.filter({ has: this.page.locator('strong', { hasText: new RegExp(`^${name}$`) }) });
  }

  /** Model names as listed. */
  async names(): Promise<string[]> {
    return this.entries.locator('.model-head strong').allTextContents();
  }

  /** The name of the model marked "in use". */
  async inUse(): Promise<string> {
    return (
      (await this.entries.filter({ hasText: 'in use' }).locator('.model-head strong').textContent()) ?? ''
    );
  }

  async importFolder(path: string): Promise<void> {
    await this.section.getByLabel('Model folder path').fill(path);
    await this.section.getByRole('button', { name: 'Import' }).click();
  }

  /** The message under the import form (an error or a confirmation). */
  async message(): Promise<string> {
    const message = this.page.getByTestId('model-message');
    await message.waitFor();
    return (await message.textContent()) ?? '';
  }

  async use(name: string): Promise<void> {
    await this.entry(name).getByRole('button', { name: 'Use' }).click();
    await this.entry(name).getByText('in use').waitFor({ timeout: 60_000 });
  }

  async remove(name: string): Promise<void> {
    await this.entry(name).getByRole('button', { name: 'Remove' }).click();
    await this.entry(name).waitFor({ state: 'detached' });
  }
}

/** The library: subject cards with reference images, and casts. */
import type { Locator, Page } from 'playwright-core';

export class LibraryPage {
  constructor(private readonly page: Page) {}

  subject(name: string): Locator {
    return this.page.getByTestId('subject-card').filter({ has: this.page.getByText(name, { exact: true }) });
  }

  async createSubject(name: string, classNoun: string): Promise<void> {
    const form = this.page.getByRole('form', { name: 'New subject' });
    await form.getByLabel('New subject name').fill(name);
    await form.getByLabel('New subject class').fill(classNoun);
    await form.getByRole('button', { name: 'Add subject' }).click();
    await this.subject(name).waitFor();
  }

  async token(name: string): Promise<string> {
    return this.subject(name).getByLabel(`Identifier token of ${name}`).inputValue();
  }

  /** Adds files through the card's file picker (the same path as dropping them). */
  async addReferenceFiles(
    name: string,
    files: { name: string; mimeType: string; buffer: Buffer }[],
  ): Promise<void> {
    await this.subject(name).getByTestId('reference-input').setInputFiles(files);
  }

  /** Drops files onto the card, as a user dragging them from the desktop. */
  async dropFiles(name: string, files: { name: string; mimeType: string; base64: string }[]): Promise<void> {
    const card = this.subject(name);
    // runs in the page (DOM types are not part of the Node test program, hence a string)
    const transfer = await this.page.evaluateHandle(`(() => {
      const dt = new DataTransfer();
      for (const f of ${JSON.stringify(files)}) {
        const bytes = Uint8Array.from(atob(f.base64), (c) => c.charCodeAt(0));
        dt.items.add(new File([bytes], f.name, { type: f.mimeType }));
      }
      return dt;
    })()`);
    await card.dispatchEvent('dragover', { dataTransfer: transfer });
    await card.dispatchEvent('drop', { dataTransfer: transfer });
  }

  async referenceCount(name: string): Promise<number> {
    return this.subject(name).locator('.ref img').count();
  }

  async message(name: string): Promise<string> {
    return (await this.subject(name).getByTestId('subject-message').textContent()) ?? '';
  }

  async createCast(name: string): Promise<void> {
    await this.page.getByLabel('New cast name').fill(name);
    await this.page.getByRole('button', { name: 'Add cast' }).click();
    await this.page
      .getByTestId('cast')
      .filter({ has: this.page.locator(`input[value="${name}"]`) })
      .waitFor();
  }

  cast(name: string): Locator {
    return this.page.getByTestId('cast').filter({ has: this.page.locator(`input[value="${name}"]`) });
  }

  async addToCast(cast: string, subject: string): Promise<void> {
    const box = this.cast(cast).getByRole('checkbox', { name: new RegExp(`^${subject} `) });
    await box.check();
  }

  async useCastForStory(cast: string): Promise<void> {
    await this.cast(cast).getByRole('button', { name: 'Use' }).click();
    await this.cast(cast).getByText('this story').waitFor();
  }
}

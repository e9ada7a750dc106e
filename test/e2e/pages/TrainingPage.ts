/**
 * The Training place: the cast to train, its settings, Start / Cancel / Resume, progress, the loss
 * curve, sample pictures, the cut-outs the training saw, and the trained model at the end.
 */
import type { Locator, Page } from 'playwright-core';

/** The settings fields, by what the screen calls them. */
export interface TrainingSettingsInput {
  steps?: number;
  classImages?: number;
  segmentationSteps?: number;
  previewEvery?: number;
  batch?: number;
}

const SETTING_IDS: Record<keyof TrainingSettingsInput, string> = {
  steps: 'training-steps',
  classImages: 'training-class-images',
  segmentationSteps: 'training-segmentation-steps',
  previewEvery: 'training-preview-every',
  batch: 'training-batch',
};

export class TrainingPage {
  constructor(private readonly page: Page) {}

  get main(): Locator {
    return this.page.getByRole('main', { name: 'Training' });
  }

  /** Opens the Training place from the main navigation. */
  async open(): Promise<void> {
    await this.page
      .getByRole('navigation', { name: 'Places' })
      .getByRole('button', { name: 'Training', exact: true })
      .click();
    await this.page.getByLabel('Cast to train').waitFor();
  }

  async chooseCast(name: string): Promise<void> {
    await this.page.getByLabel('Cast to train').selectOption({ label: name });
  }

  /** The subjects listed for the chosen cast. */
  get subjects(): Locator {
    return this.page.getByTestId('training-subject');
  }

  /** The problems that stop the cast from training ('' when there are none). */
  async problems(): Promise<string> {
    const box = this.page.getByTestId('training-problems');
    return (await box.count()) > 0 ? ((await box.textContent()) ?? '') : '';
  }

  get startButton(): Locator {
    return this.main.getByRole('button', { name: /^(Start training|Train again)$/ });
  }

  async setSettings(settings: TrainingSettingsInput): Promise<void> {
    if (settings.batch !== undefined) {
      const more = this.page.getByRole('region', { name: 'Training settings' }).locator('details');
      if ((await more.getAttribute('open')) === null) await more.locator('summary').click();
    }
    for (const [key, value] of Object.entries(settings) as [keyof TrainingSettingsInput, number][]) {
      const field = this.page.getByTestId(SETTING_IDS[key]);
      await field.fill(String(value));
      await field.blur();
    }
  }

  async setting(key: keyof TrainingSettingsInput): Promise<string> {
    return this.page.getByTestId(SETTING_IDS[key]).inputValue();
  }

  async start(): Promise<void> {
    await this.startButton.click();
  }

  async cancel(): Promise<void> {
    await this.main.getByRole('button', { name: 'Cancel training' }).click();
  }

  async resume(): Promise<void> {
    await this.main.getByRole('button', { name: /^Resume from step/ }).click();
  }

  /** Records every phase and step text the progress row shows (see {@link seen}). */
  async recordProgress(): Promise<void> {
    // runs in the page (a string: the Node test program has no DOM types)
    await this.page.evaluate(`(() => {
      const seen = [];
      window.__training = seen;
      const record = () => {
        for (const id of ['training-phase', 'training-step']) {
          const text = document.querySelector('[data-testid="' + id + '"]')?.textContent;
          if (text && !seen.includes(text)) seen.push(text);
        }
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
    })()`);
  }

  async seen(): Promise<string[]> {
    return (await this.page.evaluate('window.__training ?? []')) as string[];
  }

  async phase(): Promise<string> {
    const phase = this.page.getByTestId('training-phase');
    return (await phase.count()) > 0 ? ((await phase.textContent()) ?? '') : '';
  }

  get progressBar(): Locator {
    return this.page.getByRole('progressbar', { name: 'Training progress' });
  }

  /** Points drawn on the loss curve (0 before the curve appears). */
  async lossPoints(): Promise<number> {
    const curve = this.page.getByTestId('loss-curve');
    return (await curve.count()) > 0 ? Number(await curve.getAttribute('data-points')) : 0;
  }

  get previews(): Locator {
    return this.page.getByTestId('training-preview');
  }

  get cutOuts(): Locator {
    return this.page.getByTestId('training-cutout');
  }

  /** Whether every image in the region has loaded (naturalWidth > 0). */
  async imagesLoaded(locator: Locator): Promise<boolean> {
    return locator.evaluateAll((images) =>
      images.every((i) => (i as unknown as { naturalWidth: number }).naturalWidth > 0),
    );
  }

  get result(): Locator {
    return this.page.getByTestId('training-result');
  }

  async waitFinished(timeout: number): Promise<void> {
    await this.result.waitFor({ timeout });
  }

  /** "Render with it": renders use the trained model from now on. */
  async renderWithIt(): Promise<void> {
    await this.result.getByRole('button', { name: 'Render with it' }).click();
    await this.result.getByText('renders use it').waitFor({ timeout: 120_000 });
  }
}

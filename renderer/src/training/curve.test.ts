import { describe, expect, it } from 'vitest';
import type { TrainingLossPoint, TrainingPreview } from '../../../electron/api/contract';
import { formatTimeLeft, lossChart, timeLeftMs, withLoss, withPreview } from './curve';

describe('training curve', () => {
  it('appends losses, and a resumed step replaces it and what came after', () => {
    let points: TrainingLossPoint[] = [1, 2, 3].map((step) => ({ phase: 'unet', step, loss: 1 / step }));
    points = withLoss(points, { phase: 'segmentation', step: 1, loss: 2 });
    points = withLoss(points, { phase: 'unet', step: 2, loss: 0.7 });
    expect(points).toEqual([
      { phase: 'unet', step: 1, loss: 1 },
      { phase: 'segmentation', step: 1, loss: 2 },
      { phase: 'unet', step: 2, loss: 0.7 },
    ]);
  });

  it('keeps one preview per step, in step order', () => {
    const at = (step: number, prompt: string): TrainingPreview => ({
      step,
      images: [
        {
          subjectId: null,
          identifier: 'sks',
          prompt,
          image: { hash: 'h', url: '/files/h', mediaType: 'image/png', size: 1 },
        },
      ],
    });
    const previews = withPreview([at(50, 'a'), at(150, 'b')], at(100, 'c'));
    expect(previews.map((p) => p.step)).toEqual([50, 100, 150]);
    expect(withPreview(previews, at(100, 'd')).map((p) => p.images[0].prompt)).toEqual(['a', 'd', 'b']);
  });

  it('draws the curve in its box: first step left, last right, largest loss at the top', () => {
    const chart = lossChart(
      [
        { phase: 'unet', step: 1, loss: 1 },
        { phase: 'unet', step: 2, loss: 0.5 },
        { phase: 'unet', step: 3, loss: 0 },
      ],
      { width: 108, height: 58, pad: 4, smoothing: 0.5 },
    );
    expect(chart?.raw).toBe('M4.0,4.0 L54.0,29.0 L104.0,54.0');
    // the moving average: 1, 0.75, 0.375
    expect(chart?.smooth).toBe('M4.0,4.0 L54.0,16.5 L104.0,35.3');
    expect(lossChart([], { width: 10, height: 10 })).toBeNull();
    const flat = lossChart([{ phase: 'unet', step: 5, loss: 0.2 }], { width: 100, height: 50, pad: 0 });
    expect(flat?.raw).toBe('M50.0,25.0');
  });

  it('estimates the time left from the pace of the phase', () => {
    expect(timeLeftMs(null)).toBeNull();
    expect(timeLeftMs({ phase: 'unet', step: 0, totalSteps: 10, phaseElapsedMs: 0 })).toBeNull();
    expect(timeLeftMs({ phase: 'unet', step: 4, totalSteps: 10, phaseElapsedMs: 8000 })).toBe(12000);
    expect(formatTimeLeft(12000)).toBe('about 12 s left');
    expect(formatTimeLeft(10 * 60_000)).toBe('about 10 min left');
    expect(formatTimeLeft(3 * 3600_000)).toBe('about 3.0 h left');
  });
});

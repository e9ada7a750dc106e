import { describe, expect, it } from 'vitest';
import { parseTrainArgs } from './train-args.js';

const defaults = { out: '/models/tiny-sd', work: '/work/tiny' };
const parse = (...argv: string[]) => parseTrainArgs(argv, defaults);

describe('parseTrainArgs', () => {
  it('reads a stage with its numbers and the default folders', () => {
    expect(
      parse(
        '--stage',
        'unet',
        '--steps',
        '47000',
        '--resume',
        '--regional',
        '0.5',
        '--dataset-size',
        '16000',
      ),
    ).toEqual({
      stage: 'unet',
      options: {
        resume: true,
        out: '/models/tiny-sd',
        work: '/work/tiny',
        steps: 47000,
        regional: 0.5,
        datasetSize: 16000,
      },
    });
    expect(parse('--stage', 'evaluate', '--guidance', '5', '--sweep', '--out', '/elsewhere')).toEqual({
      stage: 'evaluate',
      options: { resume: false, out: '/elsewhere', work: '/work/tiny', guidance: 5, sweep: true },
    });
    expect(parse('--stage', 'unet', '--subject-weight', '2')).toMatchObject({
      options: { subjectWeight: 2 },
    });
    expect(parse('--stage', 'unet', '--person-share', '0.4')).toMatchObject({
      options: { personShare: 0.4 },
    });
    expect(parse('--stage', 'unet', '--contrast', '0.5')).toMatchObject({
      options: { contrast: 0.5 },
    });
    expect(parse('--stage', 'vae-encoder', '--anchor', '0', '--encoder-resnets', '2')).toMatchObject({
      options: { anchor: 0, encoderResnets: 2 },
    });
    expect(parse('--stage', 'evaluate', '--reference-judge', '/old/segmentation')).toMatchObject({
      options: { referenceJudge: '/old/segmentation' },
    });
    expect(parse('--stage', 'segmentation', '--fine-tune', '--steps', '3000')).toMatchObject({
      options: { fineTune: true, steps: 3000 },
    });
    expect(parse('--stage', 'unet', '--layers-per-block', '2')).toMatchObject({
      options: { layersPerBlock: 2 },
    });
    expect(parse('--stage', 'unet', '--layers-per-block=2,2,1')).toMatchObject({
      options: { layersPerBlock: [2, 2, 1] },
    });
  });

  it('refuses resnet counts that are not whole numbers from 1 to 4, and on other stages', () => {
    for (const value of ['0', '5', '2,', 'two', '1.5,2', '2,2,2,2,2,2,2']) {
      expect(parse('--stage', 'unet', `--layers-per-block=${value}`)).toEqual({
        error: `--layers-per-block must be a whole number from 1 to 4, or one per level separated by commas (got '${value}')`,
      });
    }
    expect(parse('--stage', 'unet', '--reference-judge', '/old')).toEqual({
      error: '--reference-judge is read by the evaluate stage, not by unet',
    });
    expect(parse('--stage', 'evaluate', '--reference-judge', ' ')).toEqual({
      error: '--reference-judge must name a segmentation folder',
    });
    expect(parse('--stage', 'unet', '--fine-tune')).toEqual({
      error: '--fine-tune is read by the segmentation stage, not by unet',
    });
    expect(parse('--stage', 'controlnet', '--layers-per-block', '2')).toEqual({
      error: '--layers-per-block is read by the unet stage, not by controlnet',
    });
  });

  it('names the stages when the stage is missing or unknown', () => {
    expect(parse()).toEqual({ error: expect.stringContaining('--stage must be one of tokenizer, vae,') });
    expect(parse('--stage', 'unte')).toEqual({ error: expect.stringContaining("(got 'unte')") });
  });

  it('refuses values out of range, with the flag and the value', () => {
    for (const [flag, value, range] of [
      ['--steps', 'abc', 'a whole number of at least 1'],
      ['--steps', '0', 'a whole number of at least 1'],
      ['--steps', '1.5', 'a whole number of at least 1'],
      ['--steps', '', 'a whole number of at least 1'],
      ['--regional', '1.2', 'a share from 0 to 1'],
      ['--subject-weight', '-1', 'a number from 0 to 20'],
      ['--person-share', '1.5', 'a share from 0 to 1'],
      ['--contrast', '-0.5', 'a number from 0 to 10'],
      ['--caption-dropout', '-0.1', 'a share from 0 to 0.5'],
      ['--dataset-size', '4e3.5', 'a whole number of at least 1'],
    ]) {
      const stage = flag === '--caption-dropout' || flag === '--dataset-size' ? 'controlnet' : 'unet';
      expect(parse('--stage', stage, `${flag}=${value}`)).toEqual({
        error: `${flag} must be ${range} (got '${value}')`,
      });
    }
  });

  it('refuses a flag the stage would ignore instead of training without it', () => {
    expect(parse('--stage', 'controlnet', '--regional', '0.5')).toEqual({
      error: '--regional is read by the unet stage, not by controlnet',
    });
    expect(parse('--stage', 'controlnet', '--subject-weight', '2')).toEqual({
      error: '--subject-weight is read by the unet stage, not by controlnet',
    });
    expect(parse('--stage', 'evaluate', '--person-share', '0.4')).toEqual({
      error: '--person-share is read by the unet stage, not by evaluate',
    });
    expect(parse('--stage', 'controlnet', '--train-text-encoder')).toEqual({
      error: '--train-text-encoder is read by the unet stage, not by controlnet',
    });
    expect(parse('--stage', 'unet', '--train-text-encoder')).toMatchObject({
      options: { trainTextEncoder: true },
    });
    expect(parse('--stage', 'unet', '--sweep')).toEqual({
      error: '--sweep is read by the evaluate stage, not by unet',
    });
    expect(parse('--stage', 'tokenizer', '--dataset-size', '10')).toEqual({
      error: '--dataset-size is read by the unet, controlnet stages, not by tokenizer',
    });
  });

  it('refuses a misspelt flag', () => {
    const r = parse('--stage', 'unet', '--step', '10');
    expect(r).toEqual({ error: expect.stringContaining("'--step'") });
  });
});

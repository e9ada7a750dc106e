/**
 * What stops a panel from rendering, found before the request leaves the editor, each issue pointing at
 * the thing that causes it so the UI can show it right there ("Region #3 has no prompt").
 */
import { countPaint, paintedColors, paintOf } from './raster';
import type { PanelDocument } from './document';
import { BACKGROUND_COLOR } from './request';

/** Where an issue is shown. */
export type IssueTarget =
  | { kind: 'region'; regionId: string }
  | { kind: 'prompt' }
  | { kind: 'settings'; field: string }
  | { kind: 'pose' }
  | { kind: 'canvas'; unclaimedColor?: string };

export interface EditorIssue {
  target: IssueTarget;
  /** `error` blocks the render; `warning` is worth knowing. */
  severity: 'error' | 'warning';
  message: string;
}

export interface ValidationContext {
  /** Fewest pixels a region needs to render: one latent pixel (VAE factor squared). */
  minRegionPixels: number;
  /** Width and height must be multiples of this. */
  vaeScaleFactor: number;
  hasControlNet: boolean;
  /** Names of subjects by id (for messages); a region bound to an id not here has lost its subject. */
  subjectNames: ReadonlyMap<string, string>;
}

/**
 * Checks a document.
 *
 * @example
 * ```ts
 * const issues = validatePanel(doc, { minRegionPixels: 64, vaeScaleFactor: 8, hasControlNet: true, subjectNames });
 * const blocking = issues.filter((i) => i.severity === 'error');
 * ```
 */
export function validatePanel(doc: PanelDocument, ctx: ValidationContext): EditorIssue[] {
  const issues: EditorIssue[] = [];
  if (doc.prompt.trim() === '') {
    issues.push({
      target: { kind: 'prompt' },
      severity: 'error',
      message: 'The panel has no prompt: describe the whole picture',
    });
  }
  doc.regions.forEach((region, i) => {
    const name = `Region #${i + 1}`;
    const target: IssueTarget = { kind: 'region', regionId: region.id };
    const pixels = countPaint(doc.segmentMap, paintOf(region.color));
    if (region.subjectId !== null && !ctx.subjectNames.has(region.subjectId)) {
      issues.push({
        target,
        severity: 'error',
        message: `${name} is bound to a subject that is not in this story's cast`,
      });
    }
    if (region.subjectId === null && region.prompt.trim() === '') {
      issues.push({ target, severity: 'error', message: `${name} has no prompt` });
    }
    if (pixels === 0) {
      issues.push({ target, severity: 'error', message: `${name} is not painted: paint it or delete it` });
    } else if (pixels < ctx.minRegionPixels) {
      issues.push({
        target,
        severity: 'error',
        message: `${name} is too small to render (${pixels} px; at least ${ctx.minRegionPixels})`,
      });
    }
  });
  const known = new Set(doc.regions.map((r) => r.color));
  for (const [color, count] of paintedColors(doc.segmentMap)) {
    if (color === BACKGROUND_COLOR || known.has(color)) continue;
    issues.push({
      target: { kind: 'canvas', unclaimedColor: color },
      severity: 'error',
      message: `${count} px are painted in ${color}, which no region uses`,
    });
  }
  const { steps, scaffoldingSteps, globalDiffuserSteps } = doc.settings;
  const k =
    scaffoldingSteps > 0 && scaffoldingSteps < 1 ? Math.round(scaffoldingSteps * steps) : scaffoldingSteps;
  if (k + globalDiffuserSteps > steps) {
    issues.push({
      target: { kind: 'settings', field: 'scaffoldingSteps' },
      severity: 'error',
      message: `Scaffolding steps k (${k}) plus global diffuser steps g (${globalDiffuserSteps}) exceed the ${steps} steps`,
    });
  }
  const f = ctx.vaeScaleFactor;
  if (doc.width % f !== 0 || doc.height % f !== 0) {
    issues.push({
      target: { kind: 'settings', field: 'size' },
      severity: 'error',
      message: `The size ${doc.width}x${doc.height} must be a multiple of ${f}`,
    });
  }
  if (doc.pose.people.length > 0 && !ctx.hasControlNet) {
    issues.push({
      target: { kind: 'pose' },
      severity: 'warning',
      message: 'The model has no ControlNet, so the skeletons are ignored',
    });
  }
  return issues;
}

/** Issues shown next to one target. */
export function issuesFor(issues: readonly EditorIssue[], match: (t: IssueTarget) => boolean): EditorIssue[] {
  return issues.filter((i) => match(i.target));
}

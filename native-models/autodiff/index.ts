/**
 * The autodiff engine: `gradients()` plus every registered gradient rule.
 * Import from here (not from backward.ts) so that all rules are registered.
 */
import './rules/elementwise.js';
import './rules/reduce.js';
import './rules/shape.js';
import './rules/conv.js';
import './rules/normalization.js';

export { gradients, registerRule, registeredOps, hasRule, sumToShape, AutodiffError } from './backward.js';
export type { GradientRule, RuleContext, GradientOptions } from './backward.js';
export { lowerConvsToNchwc, nchwcBlockSize } from './nchwc.js';

/**
 * The evaluation layer: FID, KID, fitting capacity, forgetting analysis and run reports.
 *
 *   const fx = await loadFeatureExtractor({ cacheDir: 'datasets/features', log });   // trains once, then cached
 *   const real = await realTaskStats(fx, 'fashion');                                 // once per task (its test set)
 *   const score = await fidAgainst(fx, real, generated, n);                          // or:
 *   const same = fidFromStats(real, stats(await fx.features(generated, n), fx.dim));
 *
 * Images are Float32Array of n x 784 values in [0, 1] (28x28, row-major); features are float64.
 */
export { fid, fidFromStats, kid, stats, type FeatureStats, type Features, type KidOptions, type KidResult } from './fid.js';
export { dotProducts, kidAsync, statsAsync } from './gram.js';
export { symmetricEigen, symmetricEigenvalues, jacobiEigen, sqrtPsd, traceSqrtProduct, matmul, type Eigen } from './linalg.js';
export {
  PIXELS,
  NORMALIZATIONS,
  loadOnnxExtractor,
  parseNormalization,
  resizeBilinear,
  type ClassifyingExtractor,
  type FeatureExtractor,
  type Normalization,
  type OnnxExtractorOptions,
} from './features.js';
export { CLASS_OFFSET, DEFAULT_FEATURE_CACHE, FEATURE_CLASSES, describeAccuracy, loadFeatureExtractor, type FeatureNetInfo, type FeatureNetOptions, type LeNetExtractor } from './featnet.js';
export { gridPng, gridPixels, readSamples, type GridOptions, type ImageSet, type ReadOptions } from './images.js';
export { ExportSampler, routeToTasks, taskClasses, type Generated, type ModelKind } from './generate.js';
export { fittingCapacity, pseudoLabels, type FittingOptions, type FittingResult, type LabelledImages } from './fitting.js';
export { forgetting, type Direction, type ForgettingSummary, type Matrix } from './forgetting.js';
export { fidAgainst, realFloor, realTaskStats, subsample, taskReference, type Floor, type TaskReference } from './reference.js';
export { Scorer, formatKid, formatScore, kidDigits, type Score, type ScoreOptions } from './score.js';
export { evaluateRun, readRun, FORGETTING_DEFINITION, type CellResult, type FidReport, type ForgettingReport, type RunEvalOptions, type RunEvaluation, type RunInfo } from './run.js';
export { evaluateSamples, type SamplesEvalOptions, type SamplesEvaluation } from './samples.js';
export { renderFigure, trainingCurves, heatmap, byStage, type Figure, type MetricRecord } from './plots.js';

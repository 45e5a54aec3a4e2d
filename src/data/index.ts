/** The data layer: datasets on disk and in memory, task specs, batching. */
export { Rng, hashSeed, type Seed } from './rng.ts';
export {
  DATASETS,
  DATASET_NAMES,
  DEBIAN_FASHION_DIR,
  FILE_ROLES,
  datasetInfo,
  isDatasetName,
  type DatasetFile,
  type DatasetInfo,
  type DatasetName,
  type FileRole,
} from './catalog.ts';
export { IdxError, checkPair, encodeIdx, parseIdx, parseIdxImages, parseIdxLabels, type IdxArray, type IdxImages } from './idx.ts';
export { DownloadError, downloadFile, type DownloadOptions, type DownloadResult } from './download.ts';
export { createProgress, progressLine, type Progress } from '../util/progress.js';
export { checkLocalFile } from './offline.ts';
export {
  DEFAULT_ROOT,
  clearDatasetCache,
  ensureDataset,
  ensureDatasets,
  loadPrepared,
  prepareDataset,
  type EnsureOptions,
  type LoadedDataset,
  type PreparedDataset,
} from './sources.ts';
export {
  DEFAULT_SEQUENCE,
  NUM_CLASSES,
  SEQUENCES,
  TASK_HELP,
  TaskError,
  canonicalTaskName,
  formatClassList,
  makeTask,
  parseSequence,
  parseTask,
  sequenceName,
  type TaskSpec,
} from './tasks.ts';
export { loadSequence, loadTask, localLabels, selectClasses, taskFromDataset, type Split, type TaskData } from './taskdata.ts';
export {
  countBatches,
  endlessBatches,
  epochBatches,
  epochOrder,
  gatherExamples,
  makeBatch,
  scalePixels,
  splitValidation,
  type Batch,
  type BatchOptions,
  type PixelRange,
} from './batches.ts';
export { mixTargets, mixup, oneHot, randomShifts, sampleMixLambdas, shiftImages } from './augment.ts';

// The runtime: onnxruntime sessions (device.ts), the tensors a model keeps across steps
// (store.ts) and the runner of step graphs (step-runner.ts).

export { checkDevice, createSession, DEVICES, probeDevice, type Device, type RuntimeOptions } from './device.js';
export { TensorStore, type LeafSpec } from './store.js';
export { StepRunner, type Feed } from './step-runner.js';
export { CHECKPOINT_FORMAT } from '../formats/checkpoint.js';

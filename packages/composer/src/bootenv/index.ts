export {
  initialEnv,
  encodeGrubEnv,
  decodeGrubEnv,
  chooseEnv,
  setEnvVars,
  checkEnvState,
  ENV_FILES,
  ENV_WRITE_STEPS,
  EDGE_VARIABLES,
  GRUB_ENV_SIZE,
  GRUB_ENV_HEADER,
  type BootEnv,
  type ChosenEnv,
  type EnvFile,
  type EnvFiles,
  type EnvWriteStep,
} from './env.js';
export { readImageEnv, readImageEnvFiles, writeImageEnv, writeImageFile, type WriteImageEnvOptions } from './image.js';
export { writeEnvTree } from './tree.js';
export { bootloaderStart, healthyChanges, MAX_UNCONFIRMED_BOOTS, type BootloaderStart, type BootSlot } from './state.js';

export { cpioBytes, writeCpio, type CpioEntry, type CpioOptions } from './cpio.js';
export { moduleName, parseModulesDep, readModulesDep, resolveModules, type ModuleFile, type ModulePlan } from './modules.js';
export { DEFAULT_INIT, initScript, OPTIONAL_MODULES, PARTITIONS_SH, PARTITIONS_SH_PATH, RUN_DIR, slotBootStage, type InitOptions, type SlotBootOptions } from './init.js';
export { buildInitramfs, busyboxVersion, INITRAMFS_FEATURES, INITRAMFS_FEATURES_PATH, type InitramfsOptions, type InitramfsResult } from './build.js';
export { BOARD_MODULES } from './boards.js';

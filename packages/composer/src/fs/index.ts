export { buildExt4, type Ext4Options } from './ext4.js';
export { buildVfat, fatLabel, readGeometry, type VfatOptions, type FatGeometry } from './vfat.js';
export { copyIntoImage, writeAt } from './copy.js';
export { runTool, toolEnv, type ToolResult, type ToolOptions } from './tool.js';

/**
 * The U-Boot half of verified boot, on the build host: the signed FIT of a slot (`buildFit`), U-Boot's
 * control dtb with the FIT key (`controlDtb`), and the board's env flash that runs the boot script
 * from flash (`ubootScriptFlash` + `writeUbootFlash`).
 *
 * Error codes (ComposeError): ERR_FIT_INPUT, ERR_FIT_KEY, ERR_FDT_FORMAT, ERR_UBOOT_DTB,
 * ERR_UBOOT_ENV, ERR_UBOOT_SCRIPT, ERR_HOST_TOOL, ERR_TOOL_FAILED.
 */
export { buildFit, fitSource, FIT_CONFIG, FIT_KERNEL_LOAD, MAX_FIT_INPUT_BYTES, type BuildFitOptions } from './fit.js';
export { controlDtb, type ControlDtbOptions } from './control-dtb.js';
export { checkFitSigner, type FitSigner } from './signer.js';
export { readFdt, fdtNode, fdtStrings, FDT_MAGIC, type FdtNode } from './fdt.js';
export { ubootDefaultEnvironment, editEnvironment, envValue, ubootEnvBlock, writeUbootFlash, UBOOT_ENV_SIZE, UBOOT_FLASH_BANK_SIZE, UBOOT_FLASH1_BASE } from './env.js';
export { ubootScriptFlash, legacyScriptImage, isDistroBootVariable, UBOOT_SCRIPT_ADDRESS, UBOOT_SCRIPT_OFFSET, MAX_UBOOT_SCRIPT_BYTES, type ScriptFlashOptions } from './script-flash.js';

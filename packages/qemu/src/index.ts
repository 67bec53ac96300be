/**
 * @edgeimage/qemu — boots disk images (or a kernel directly) under QEMU and watches the serial
 * console: `bootTest` for one boot with markers in order, `QemuSession` for a test that drives
 * several boots and reboots of one QEMU process.
 */
export { BootTestError } from './errors.js';
export { ARCHES, FIRMWARES, ARM64_CPU, DEFAULT_FIRMWARE, FIRMWARE_DIR_ENV, KERNEL_CONSOLE, QEMU_BINARY, qemuCommand, qemuPath, netArgs, resolveFirmware, GUEST_SERVICE_ADDRESS, checkGuestForwards, type GuestForward, UEFI_NO_BOOT_DELAY, DISPLAY_DEVICE, type Accel, type Arch, type Firmware, type FirmwareFiles, type MachineSpec } from './machine.js';
export { QemuSession, DEFAULT_FAILURES, cleanLine, formatLine, type ConsoleLine, type ExitStatus, type FailurePattern, type MarkerMatch, type SessionOptions, type WaitOptions } from './session.js';
export { bootTest, assertBooted, checkScreenshotPath, checkScreenExpect, parseDiskSize, HEALTHY, SECURE_BOOT_ENABLED, NO_BOOTABLE_DEVICE, secureBootRefusal, watchBoots, bootBanner, BOOT_BANNERS, MAX_REBOOTS, SCREEN_INTERVAL_MS, type BootTestOptions, type BootTestResult, type DirectBoot, type MarkerResult, type BootRecord, type BootBanner, type WatchSpec, type WatchState } from './boot-test.js';
export { parseForward, parseHttpExpect, checkForwards, checkHttpUrl, httpLabel, pollHttp, portsInUse, HTTP_MAX_BODY_BYTES, HTTP_REQUEST_TIMEOUT_MS, HTTP_INTERVAL_MS, type PortForward, type HttpExpect, type HttpAnswer, type HttpPollOptions } from './http-expect.js';
export { QmpClient, QMP_MAX_LINE_BYTES } from './qmp.js';
export { parseColour, parseScreenExpect, hexColour, decodePng, readScreen, colourShare, dominantColours, describeColours, checkScreen, screendump, saveScreendump, screenLabel, DEFAULT_SCREEN_SHARE, DEFAULT_SCREEN_TOLERANCE, SCREEN_MAX_PIXELS, type Rgb, type Screen, type ScreenExpect, type ScreenCheck } from './screen.js';
export { jsonReport, junitReport, scenarioReport } from './report.js';
export { ubootEnvFlash } from './uboot-env.js';
export { runScenario } from './scenario.js';
export { SCENARIOS, CRASH_POINTS, SCENARIO_MARKERS, parseCrashPoint, parseScenario, type ScenarioName, type CrashPoint } from './scenario-contract.js';
export { checkScenarioOptions, checkScenarioUsage, SCENARIO_OPTION_NAMES, type ScenarioOptions, type ScenarioUsage, type ScenarioOptionNames } from './scenario-options.js';
export type { ScenarioResult, ScenarioStep, ScenarioCheck, ScenarioFailure, PowerCutOutcome, StepOutcome } from './scenario-harness.js';
export { readUpdateManifest, tamperUpdate, tarEntries, type UpdateManifest, type TarEntry } from './update-file.js';
export * from './firmware/index.js';
export { tamperImage, checkTamperPath, TamperError, TAMPER_MAX_CONTENT, type TamperOp, type FlipByte, type ReplaceFile, type ByteAt, type TamperChange, type ByteChange, type FileReplacement, type TamperResult } from './tamper.js';
export { factoryFilesOf, type FactoryFiles } from './factory-files.js';
export { runOtaScenario, pointerUpdate, type OtaScenarioOptions, type OtaScenarioResult, type OtaPointers, type OtaStep, type OtaCheck } from './ota-scenario.js';
export { serveOtaStore, type OtaStoreServer, type OtaFault, type OtaRequest } from './ota-store-server.js';

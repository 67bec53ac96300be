import { EdgeimageError } from '@edgeimage/assertions';

/**
 * A boot-test failure. `code` is stable and is what callers and tests switch on (never the
 * message text); `context` carries what a caller needs to act on it.
 *
 * Refusals before QEMU starts:
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_IMAGE_OPEN` | the image (or a direct-boot kernel/initrd) does not exist (`context.path`) |
 * | `ERR_ARCH_MISMATCH` | `arch` contradicts the architecture of the image's model (`context.arch`, `context.image`) |
 * | `ERR_ARCH_UNKNOWN` | the image holds no model and no `arch` was given |
 * | `ERR_NO_BOOT_PARTITION` | the image has no system-boot partition |
 * | `ERR_FIRMWARE_MISSING` | a firmware file is missing (`context.file`, `context.package`) |
 * | `ERR_FIRMWARE_UNSUPPORTED` | a firmware the architecture cannot use (U-Boot on amd64) |
 * | `ERR_QEMU_MISSING` | the QEMU binary is not installed (`context.binary`, `context.package`) |
 * | `ERR_ACCEL` | KVM asked for a guest architecture other than the host's |
 * | `ERR_DISK_SIZE` | a `diskSize` that is malformed or smaller than the image |
 * | `ERR_PORT_IN_USE` | a forwarded host port cannot be bound on 127.0.0.1 (`context.port`, `context.error`) |
 * | `ERR_USAGE` | options that do not go together, a forward or HTTP expectation that is malformed (a port out of range or twice, a URL not to 127.0.0.1/localhost or not on a forwarded port) |
 *
 * Failures of the boot itself (`context.tail` holds the last lines of the console log):
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_BOOT_TIMEOUT` | a marker did not appear in time (`context.pattern`) |
 * | `ERR_KERNEL_PANIC` | `Kernel panic - not syncing` on the console |
 * | `ERR_INITRAMFS_FAILED` | `edgeimage-initramfs: FAILED: <reason>` on the console (`context.detail`) |
 * | `ERR_BOOTLOADER` | a GRUB `error: …` line, or a U-Boot image error (`context.detail`) |
 * | `ERR_QEMU_EXITED` | QEMU exited before the markers appeared (`context.exitCode`, `context.stderr`) |
 * | `ERR_POWERED_OFF` | with `reboots` or `expectPowerOff`: the guest powered off (QEMU exited with status 0) before the markers appeared (`context.boots`) |
 * | `ERR_TOO_MANY_REBOOTS` | with `reboots`: the machine started once more than allowed (`context.line`, `context.boots`) |
 * | `ERR_SECURE_BOOT_REFUSED` | Secure Boot: the firmware refused the bootloader (`Access Denied` or `Security Violation`, `context.denial`), then started nothing |
 * | `ERR_NO_BOOTABLE_DEVICE` | Secure Boot: the firmware found nothing to start and refused no image from a disk (no disk, no EFI System Partition, no bootloader on it) |
 * | `ERR_ABORTED` | the boot was cancelled (Ctrl-C: the caller's AbortSignal) |
 * | `ERR_HTTP_EXPECT` | after the markers, no 2xx answer (matching its pattern) from an `expectHttp` URL in time (`context.url`, `context.last`, `context.body`) |
 * | `ERR_SCREEN_EXPECT` | after the markers, the screen never showed an `expectScreen` colour on its share of the pixels in time (`context.share`: the last seen; `context.screenshot`: the last screendump, kept beside the log) |
 * | `ERR_SCREENSHOT` | the `screenshot` could not be taken or placed (`context.file`, `context.cause`) |
 * | `ERR_SCREENSHOT_MARKER` | no console line matched `screenshot.after` before the boot ended (the screenshot then taken at the end, when QEMU still ran) |
 * | `ERR_QMP` | QEMU's QMP monitor failed: no greeting, not QEMU's answers, a command unanswered in time, QEMU's own error (`context.qmpClass`) |
 * | `ERR_SCREEN_PNG` | a screendump that is no PNG QEMU writes (size, depth, interlace), or cannot be read |
 *
 * Scenarios (`runScenario`): refusals before anything is copied or booted —
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_SCENARIO` | an unknown scenario (`context.valid` lists them) |
 * | `ERR_CRASH_POINT` | an unknown crash point (`context.valid` lists the device's points) |
 * | `ERR_USAGE` | options that do not go together (a crash point outside power-cut, every point in place) |
 * | `ERR_UPDATE_OPEN` | the update file does not exist |
 * | `ERR_UPDATE_FILE` | the update file is no tar, or has no `edgeimage-update/manifest` |
 * | `ERR_SCENARIO_GRADE` | power-cut on an image whose model is not grade dangerous (`context.grade`): it has no crash points |
 *
 * — and what fails a scenario's step (`failure.code`, besides the boot failures above):
 *
 * | code | meaning |
 * | --- | --- |
 * | `ERR_UPDATE_REFUSED` | the device refused an update it should apply |
 * | `ERR_UPDATE_APPLIED` | the device applied an update it should refuse |
 * | `ERR_UPDATE_FAILED` | the device's `edge-update: FAILED:` line |
 * | `ERR_UNHEALTHY` | `UNHEALTHY` where the system should be healthy |
 * | `ERR_COMMITTED` | a try boot committed where it must not be |
 * | `ERR_SCENARIO_CHECK` | a check of the disk between boots (boot environment, the inactive slot's bytes, the refusal's reason) |
 * | `ERR_NOT_RECOVERED` | after a power cut, no boot became healthy on slot a or b |
 */
export class BootTestError extends EdgeimageError {
  constructor(code: string, message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}

/**
 * Small composed A/B images of both architectures (the composer's image world): an amd64 GPT
 * image, an arm64 GPT image and an arm64 MBR image. Their boot assets are not bootable (noise
 * for BOOTX64.EFI): enough for the firmware to start and for the refusals before QEMU.
 */
import { closeSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { abStructures, baseTree, gadgetTree, gadgetYaml, kernelTree } from './image-bundles.js';
import { makeImageWorld, type ImageWorld } from './image-world.js';

export interface TestImages {
  world: ImageWorld;
  amd64Gpt: string;
  arm64Gpt: string;
  arm64Mbr: string;
  /** A GPT disk with only a system-a partition (no system-boot). */
  noBoot: string;
  /** A GPT disk with an (empty) system-boot partition and no slots: no model. */
  noModel: string;
}

function gptDisk(path: string, partitions: string[][]): string {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, 32 * 2 ** 20);
  closeSync(fd);
  const r = spawnSync('sgdisk', [...partitions.flat(), path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sgdisk: ${r.stderr}`);
  return path;
}

export async function makeTestImages(): Promise<TestImages> {
  const world = await makeImageWorld();
  const amd64Gpt = (await world.compose(await world.resolve(await world.model()))).images[0]!.path;
  await world.publish('edge-arm-efi', gadgetTree('edge-arm-efi', gadgetYaml('arm', 'gpt', 'grub', abStructures('gpt')), { arch: 'arm64' }));
  await world.publish('edge-arm-uboot', gadgetTree('edge-arm-uboot', gadgetYaml('arm', 'mbr', 'u-boot', abStructures('mbr')), { arch: 'arm64' }));
  await world.publish('edge-kernel-arm64', kernelTree('edge-kernel-arm64', { arch: 'arm64' }));
  await world.publish('edge-base-arm64', baseTree('edge-base-arm64', 'arm64'));
  const arm = async (gadget: string, model: string) =>
    (await world.compose(await world.resolve(await world.model({ model, gadget, kernel: 'edge-kernel-arm64', base: 'edge-base-arm64', architecture: 'arm64' })))).images[0]!.path;
  const arm64Gpt = await arm('edge-arm-efi', 'edge-arm-efi');
  const arm64Mbr = await arm('edge-arm-uboot', 'edge-arm-uboot');
  const d = world.tempDir('disks-');
  const noBoot = gptDisk(join(d, 'no-boot.img'), [['-n', '1:2048:+8M', '-c', '1:system-a']]);
  const noModel = gptDisk(join(d, 'no-model.img'), [['-n', '1:2048:+8M', '-t', '1:EF00', '-c', '1:system-boot']]);
  return { world, amd64Gpt, arm64Gpt, arm64Mbr, noBoot, noModel };
}

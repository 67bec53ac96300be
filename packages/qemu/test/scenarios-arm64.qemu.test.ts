/**
 * The scenarios of the arm64 boards: arm64-efi (AAVMF, the same grub.cfg as pc) and arm64-uboot
 * (U-Boot's own boot script and environment reader), each a subset named in
 * @edgeimage/testkit/scenario-boards, where the matrix and what each scenario must end in are.
 */
import { describeBoardScenarios, hasQemu, SCENARIO_BOARDS, useScenarioWorld } from '@edgeimage/testkit/scenario-boards';

const world = useScenarioWorld();
describeBoardScenarios(SCENARIO_BOARDS['arm64-efi'], world);
describeBoardScenarios(SCENARIO_BOARDS['arm64-uboot'], world);

if (!hasQemu) test.skip('qemu-system-x86_64 / qemu-system-aarch64 are not installed: the scenarios are skipped', () => undefined);

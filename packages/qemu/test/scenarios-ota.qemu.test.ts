/**
 * Network updates (issue 15) under QEMU on pc-amd64 and arm64-uboot: `scripts/scenarios --only
 * ota`. One QEMU per board, its reboots followed: the device polls a store the host serves on
 * 127.0.0.1 (reached only through QEMU's user networking at 10.0.2.100), and the host moves the
 * channel and makes the store misbehave as the device's console says what it did — expired and
 * forged pointers, rollout 0 then 100, a download cut half-way and resumed, a pointer back to
 * revision 1, a revision whose app never becomes healthy (rolled back, not tried again), a trickle,
 * a changed byte and an endless stream. What each step is and what it must show:
 * packages/qemu/src/ota-scenario.ts; the matrix: @edgeimage/testkit/scenario-boards.
 */
import { describeBoardScenarios, hasQemu, SCENARIO_BOARDS, useScenarioWorld } from '@edgeimage/testkit/scenario-boards';

const world = useScenarioWorld();
describeBoardScenarios(SCENARIO_BOARDS['ota-pc-amd64'], world);
describeBoardScenarios(SCENARIO_BOARDS['ota-arm64-uboot'], world);

if (!hasQemu) test.skip('qemu-system-x86_64 / qemu-system-aarch64 are not installed: the scenarios are skipped', () => undefined);

/**
 * The reference robot's scenarios (a Debian base with systemd, robot-sensor's python3 services) on
 * robot-pc-amd64: rollback and power-cut after-env (@edgeimage/testkit/scenario-boards has the
 * matrix); its update scenario with the updated service's HTTP answers is robot.qemu.test.ts'.
 */
import { describeBoardScenarios, hasQemu, SCENARIO_BOARDS, useScenarioWorld } from '@edgeimage/testkit/scenario-boards';

const world = useScenarioWorld(['robot-pc-amd64']);
describeBoardScenarios(SCENARIO_BOARDS['robot-pc-amd64'], world);

if (!hasQemu) test.skip('qemu-system-x86_64 / qemu-system-aarch64 are not installed: the scenarios are skipped', () => undefined);

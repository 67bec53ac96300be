import type { PartitionInfo, PartitionTable } from './read.js';

/**
 * The partition named `name` (GPT) or with 1-based `index` (GPT or MBR), or `undefined`.
 * MBR partitions have no names: on MBR disks edgeimage finds slots by filesystem label instead.
 *
 * ```ts
 * const table = readPartitionTable('disk.img');
 * findPartition(table, 'system-boot'); // by GPT name
 * findPartition(table, 1);             // by index, e.g. the vfat partition of an MBR disk
 * ```
 */
export function findPartition(table: PartitionTable, by: string | number): PartitionInfo | undefined {
  return typeof by === 'number' ? table.partitions.find((p) => p.index === by) : table.partitions.find((p) => p.name === by);
}

/**
 * The host tools edgeimage runs (mkfs.ext4, mcopy, unsquashfs…): one table of them and their
 * Debian packages (host-tools.tsv, read by `edgeimage doctor` and scripts/setup too), and one way
 * to run them. Below every package that runs a tool (store, gadget, composer, cli).
 */
export { HostToolError, HostToolMissingError, debianPackage, debianPackageOf, hostTools, HOST_TOOLS_TSV, type HostTool } from './table.js';
export { hostToolEnv, runTool, stderrTail, type ToolOptions, type ToolResult } from './run.js';

// STUB — to be implemented (bundle helper).
export interface SnapApp {
  command?: string;
  daemon?: string;
  [key: string]: unknown;
}
export interface SnapYaml {
  name: string;
  version: string;
  type: 'app' | 'base' | 'kernel' | 'gadget' | 'snapd' | 'os' | 'core';
  architectures: string[];
  base?: string;
  summary?: string;
  description?: string;
  apps: Record<string, SnapApp>;
}
export function parseSnapYaml(_text: string, _file: string): SnapYaml {
  throw new Error('not implemented');
}

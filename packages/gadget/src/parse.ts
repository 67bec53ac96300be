// STUB — to be implemented (gadget helper).
import type { GadgetInfo } from './types.js';
/** Parses and validates gadget.yaml text (rules that need no model). */
export function parseGadgetYaml(_text: string, _file: string): GadgetInfo {
  throw new Error('not implemented');
}
export function readGadgetYaml(_file: string): GadgetInfo {
  throw new Error('not implemented');
}

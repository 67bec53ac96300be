/** Failing with a position: every rule throws through here, so every error names file:line:col. */
import { GadgetError, type GadgetErrorCode } from '../errors.js';
import type { Structure } from '../types.js';
import type { Path, YamlSource } from '../lib/yaml-source.js';

export class Ctx {
  constructor(readonly src: YamlSource) {}

  get file(): string {
    return this.src.file;
  }

  /** Throws a GadgetError at the value at `path` (or the nearest enclosing value that exists). */
  fail(code: GadgetErrorCode, message: string, path: Path, structure?: string): never {
    const p = this.src.pos(path);
    throw new GadgetError(message, this.file, p?.line, p?.col, structure, code);
  }

  /** Throws a GadgetError at the key `key` of the map at `path`. */
  failKey(code: GadgetErrorCode, message: string, path: Path, key: string, structure?: string): never {
    const p = this.src.keyPos(path, key);
    throw new GadgetError(message, this.file, p?.line, p?.col, structure, code);
  }
}

/** How errors name a structure: its name, else `#N` (index in the volume's structure list). */
export function structureRef(s: Pick<Structure, 'name' | 'yamlIndex'>): string {
  return s.name ? s.name : `#${s.yamlIndex}`;
}

/** `"BIOS Boot" (line 12)` / `#0 (line 5)`: another structure, inside a message. */
export function describeOther(s: Pick<Structure, 'name' | 'yamlIndex' | 'line'>): string {
  const ref = s.name ? JSON.stringify(s.name) : `#${s.yamlIndex}`;
  return s.line ? `${ref} (line ${s.line})` : ref;
}

/** Throws a GadgetError at a structure's entry (for rules that run on the typed gadget). */
export function failAt(code: GadgetErrorCode, message: string, file: string, s: Structure | undefined): never {
  throw new GadgetError(message, file, s?.line, s?.col, s ? structureRef(s) : undefined, code);
}

export function structurePath(volume: string, yamlIndex: number, ...rest: (string | number)[]): Path {
  return ['volumes', volume, 'structure', yamlIndex, ...rest];
}

import { ComposeError } from '../../errors.js';

/** The first word of every flattened device tree (and so of every FIT). */
export const FDT_MAGIC = 0xd00dfeed;

const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_NOP = 4;
const FDT_END = 9;
/** libfdt's FDT_MAX_DEPTH: deeper trees are refused by U-Boot as well. */
const MAX_DEPTH = 32;
/** Bounds the node count of an untrusted tree (a virt dtb has ~100 nodes, a FIT ~10). */
const MAX_NODES = 10_000;

export interface FdtNode {
  name: string;
  props: Map<string, Buffer>;
  children: Map<string, FdtNode>;
}

/**
 * Reads a flattened device tree (a dtb or a FIT) into nodes and raw property values, to check what
 * mkimage wrote and to refuse inputs that are no device tree. Every offset and size is checked
 * against the buffer; a malformed tree is ERR_FDT_FORMAT naming `what`.
 */
export function readFdt(buf: Buffer, what: string): FdtNode {
  const bad = (why: string): ComposeError => new ComposeError('ERR_FDT_FORMAT', `${what}: not a valid flattened device tree (${why})`, { file: what });
  if (buf.length < 40) throw bad(`${buf.length} bytes, a header is 40`);
  const magic = buf.readUInt32BE(0);
  if (magic !== FDT_MAGIC) throw bad(`first word ${magic.toString(16).padStart(8, '0')}, expected d00dfeed`);
  const total = buf.readUInt32BE(4);
  const offStruct = buf.readUInt32BE(8);
  const offStrings = buf.readUInt32BE(12);
  const sizeStrings = buf.readUInt32BE(32);
  const sizeStruct = buf.readUInt32BE(36);
  if (total > buf.length || offStruct + sizeStruct > total || offStrings + sizeStrings > total) throw bad(`header sizes beyond the ${buf.length} bytes read`);
  const end = offStruct + sizeStruct;
  const str = (off: number): string => {
    if (off >= sizeStrings) throw bad(`property name offset ${off} outside the strings block`);
    const at = offStrings + off;
    const nul = buf.indexOf(0, at);
    if (nul < 0 || nul >= offStrings + sizeStrings) throw bad('unterminated property name');
    return buf.toString('latin1', at, nul);
  };
  let p = offStruct;
  const word = (): number => {
    if (p + 4 > end) throw bad('structure block ends early');
    const v = buf.readUInt32BE(p);
    p += 4;
    return v;
  };
  const stack: FdtNode[] = [];
  let root: FdtNode | undefined;
  let nodes = 0;
  for (;;) {
    const tag = word();
    if (tag === FDT_BEGIN_NODE) {
      const nul = buf.indexOf(0, p);
      if (nul < 0 || nul >= end) throw bad('unterminated node name');
      const node: FdtNode = { name: buf.toString('latin1', p, nul), props: new Map(), children: new Map() };
      p = (nul + 4) & ~3;
      if (++nodes > MAX_NODES) throw bad(`more than ${MAX_NODES} nodes`);
      if (stack.length >= MAX_DEPTH) throw bad(`nodes nested deeper than ${MAX_DEPTH}`);
      const parent = stack[stack.length - 1];
      if (parent) parent.children.set(node.name, node);
      else if (root) throw bad('a second root node');
      else root = node;
      stack.push(node);
    } else if (tag === FDT_END_NODE) {
      if (!stack.pop()) throw bad('a node end without a node');
    } else if (tag === FDT_PROP) {
      const len = word();
      const name = str(word());
      if (p + len > end) throw bad(`property ${name} runs past the structure block`);
      const node = stack[stack.length - 1];
      if (!node) throw bad(`property ${name} outside any node`);
      node.props.set(name, buf.subarray(p, p + len));
      p = (p + len + 3) & ~3;
    } else if (tag === FDT_END) {
      if (stack.length || !root) throw bad('the structure ends inside a node');
      return root;
    } else if (tag !== FDT_NOP) throw bad(`unknown tag ${tag}`);
  }
}

/** The node at `path` (`/a/b`), if any. */
export function fdtNode(root: FdtNode, path: string): FdtNode | undefined {
  let n: FdtNode | undefined = root;
  for (const part of path.split('/').filter(Boolean)) n = n?.children.get(part);
  return n;
}

/** A string property's value (without its NUL), or the strings of a string list. */
export function fdtStrings(value: Buffer | undefined): string[] {
  if (!value || !value.length) return [];
  return value.toString('latin1').replace(/\0$/, '').split('\0');
}

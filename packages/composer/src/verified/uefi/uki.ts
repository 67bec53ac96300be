/**
 * Unified kernel images: systemd's EFI stub with the kernel, initrd, command line and os-release
 * added as PE sections, assembled here rather than with objcopy, because objcopy stamps the
 * current time into the header (SOURCE_DATE_EPOCH is not honoured) and the host's binutils cannot
 * write arm64 PE files.
 */
import { ComposeError } from '../../errors.js';
import { SECTION_HEADER_SIZE, alignUp, parsePe, writePeChecksum } from './pe.js';

export interface UkiInputs {
  /** systemd-boot-efi's `linuxx64.efi.stub` or `linuxaa64.efi.stub`. */
  stub: Buffer;
  /** The kernel as the stub starts it: bzImage on amd64, the PE `Image` on arm64. */
  kernel: Buffer;
  initrd: Buffer;
  /** Written without a trailing newline: the stub hands the bytes to the kernel as they are. */
  cmdline: string;
  /** An os-release text (`ID=…`), what boot menus show. */
  osRelease: string;
}

/** The stubs this is made for; another machine's stub would start a kernel it cannot run. */
const UKI_MACHINES: Record<number, string> = { 0x8664: 'x86-64', 0xaa64: 'arm64' };
const UKI_SECTIONS = ['.osrel', '.cmdline', '.linux', '.initrd'] as const;
/**
 * Sections systemd-stub acts on besides ours: a stub that already carries one (a device tree the
 * kernel would get, a splash, PCR data) would have it signed into every UKI unseen.
 */
const STUB_PAYLOAD_SECTIONS = ['.dtb', '.splash', '.uname', '.pcrsig', '.pcrpkey', '.ucode', '.profile'] as const;
/** IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ: data the stub reads, never runs. */
const DATA_SECTION = 0x40000040;
/** systemd-stub's own rule: its payload sections start on page boundaries. */
const PAGE = 4096;
/** Kernel command lines are a few KiB at most; a larger one is a mistake, not a configuration. */
const MAX_CMDLINE = 64 * 1024;
const MAX_OS_RELEASE = 64 * 1024;

/** AArch64 NOP: gnu-efi's hand-written arm64 header is padded with it up to .text. */
const AARCH64_NOP = 0xd503201f;

/** Zeros, or the NOPs the arm64 stub pads its headers with: never executed (the entry point is in .text). */
function isPadding(b: Buffer): boolean {
  if (b.every((x) => x === 0)) return true;
  for (let i = 0; i + 4 <= b.length; i += 4) if (b.readUInt32LE(i) !== AARCH64_NOP) return false;
  return true;
}

/**
 * Builds a UKI: the stub's headers and sections unchanged, then `.osrel`, `.cmdline`, `.linux`,
 * `.initrd` in that order, each at the next 4 KiB RVA after the stub's SizeOfImage and the
 * previous section, so none can overlap; TimeDateStamp zero and CheckSum recomputed. What the
 * firmware never loads is left out: the stub's COFF symbol table, any bytes after its last
 * section, and a certificate table (a stub's signature would not cover the UKI; sign it after).
 * Same inputs, same bytes. Unsigned: see {@link signPe}.
 *
 * @example
 * const uki = buildUki({ stub: readFileSync(STUB), kernel, initrd, cmdline: 'console=ttyS0', osRelease: 'ID=edgeimage\n' });
 */
export function buildUki(inputs: UkiInputs): Buffer {
  const { stub, kernel, initrd } = inputs;
  const h = parsePe(stub, 'the UKI stub');
  const stubError = (message: string, context: Record<string, unknown> = {}): ComposeError => new ComposeError('ERR_UKI_STUB', `the UKI stub ${message}`, context);
  if (!UKI_MACHINES[h.machine]) throw stubError(`is for machine 0x${h.machine.toString(16)}, expected x86-64 (0x8664) or arm64 (0xaa64)`, { machine: h.machine });
  const clash = h.sections.find((s) => (UKI_SECTIONS as readonly string[]).includes(s.name) || (STUB_PAYLOAD_SECTIONS as readonly string[]).includes(s.name));
  if (clash) throw stubError(`already has a ${clash.name} section: ${(UKI_SECTIONS as readonly string[]).includes(clash.name) ? 'it is a UKI, not a stub' : 'systemd-stub would hand it on, signed without the build ever choosing it'}`, { section: clash.name });
  // The new section headers go in the gap after the table; moving the stub's sections to make
  // room would change file offsets its own data may depend on.
  const tableEnd = h.sectionTableOffset + SECTION_HEADER_SIZE * h.sections.length;
  const firstData = Math.min(h.sizeOfHeaders, ...h.sections.filter((s) => s.sizeOfRawData > 0).map((s) => s.pointerToRawData));
  if (tableEnd + SECTION_HEADER_SIZE * UKI_SECTIONS.length > firstData) {
    throw stubError(`has no room for ${UKI_SECTIONS.length} more section headers (table ends at 0x${tableEnd.toString(16)}, first data at 0x${firstData.toString(16)})`, { tableEnd, firstData });
  }
  if (!isPadding(stub.subarray(tableEnd, tableEnd + SECTION_HEADER_SIZE * UKI_SECTIONS.length))) {
    throw stubError(`keeps data after its section table at 0x${tableEnd.toString(16)}, where the new section headers would go`, { tableEnd });
  }
  const text = (name: string, value: string, max: number): Buffer => {
    const b = Buffer.from(value, 'utf8');
    if (b.length === 0 || b.length > max || b.includes(0)) {
      throw new ComposeError('ERR_UKI_INPUT', `the UKI's ${name} must be 1 to ${max} bytes of text without NUL, got ${b.length} bytes${b.includes(0) ? ' with a NUL' : ''}`, { field: name, size: b.length });
    }
    return b;
  };
  const payloads = [text('os-release', inputs.osRelease, MAX_OS_RELEASE), text('cmdline', inputs.cmdline, MAX_CMDLINE), kernel, initrd];
  for (const [i, p] of [kernel, initrd].entries()) {
    if (p.length === 0) throw new ComposeError('ERR_UKI_INPUT', `the UKI's ${i === 0 ? 'kernel' : 'initrd'} is empty`, { field: i === 0 ? 'kernel' : 'initrd' });
  }

  let rva = alignUp(h.sizeOfImage, Math.max(PAGE, h.sectionAlignment));
  let offset = alignUp(h.rawEnd, h.fileAlignment);
  const placed = payloads.map((data, i) => {
    const p = { name: UKI_SECTIONS[i]!, data, rva, offset, rawSize: alignUp(data.length, h.fileAlignment) };
    rva = alignUp(rva + data.length, Math.max(PAGE, h.sectionAlignment));
    offset += p.rawSize;
    return p;
  });
  const last = placed[placed.length - 1]!;
  const sizeOfImage = alignUp(last.rva + last.data.length, h.sectionAlignment);
  if (sizeOfImage > 0xffffffff || offset > 0xffffffff) {
    throw new ComposeError('ERR_UKI_TOO_LARGE', `the UKI would be ${offset} bytes with SizeOfImage ${sizeOfImage}: PE/COFF fields are 32-bit`, { size: offset, sizeOfImage });
  }

  const out = Buffer.alloc(offset);
  stub.copy(out, 0, 0, h.rawEnd);
  for (const [i, p] of placed.entries()) {
    const o = tableEnd + SECTION_HEADER_SIZE * i;
    out.fill(0, o, o + SECTION_HEADER_SIZE); // over the stub's header padding
    out.write(p.name, o, 8, 'latin1');
    out.writeUInt32LE(p.data.length, o + 8);
    out.writeUInt32LE(p.rva, o + 12);
    out.writeUInt32LE(p.rawSize, o + 16);
    out.writeUInt32LE(p.offset, o + 20);
    out.writeUInt32LE(DATA_SECTION, o + 36);
    p.data.copy(out, p.offset);
  }
  out.writeUInt16LE(h.sections.length + placed.length, h.coffOffset + 2);
  out.writeUInt32LE(0, h.coffOffset + 4); // TimeDateStamp
  out.writeUInt32LE(0, h.coffOffset + 8); // PointerToSymbolTable: the symbols were not copied
  out.writeUInt32LE(0, h.coffOffset + 12); // NumberOfSymbols
  const initialized = h.sizeOfInitializedData + placed.reduce((n, p) => n + p.rawSize, 0);
  out.writeUInt32LE(Math.min(initialized, 0xffffffff), h.optionalOffset + 8);
  out.writeUInt32LE(sizeOfImage, h.optionalOffset + 56);
  out.writeUInt32LE(0, h.securityDirectoryOffset);
  out.writeUInt32LE(0, h.securityDirectoryOffset + 4);
  writePeChecksum(out, h);
  return out;
}

/**
 * Reads the headers of a PE/COFF image (an EFI binary) with every offset and size checked
 * against the file before it is used: the UKI builder and the Authenticode signer take stubs and
 * bootloaders from bundles, which are input, not code we trust to be well formed.
 */
import { ComposeError } from '../../errors.js';

/** The PE/COFF specification's own limit. */
export const MAX_PE_SECTIONS = 96;
/** No EFI binary we build or sign comes near this; a larger SizeOfImage is a damaged header. */
export const MAX_PE_IMAGE = 1 << 30;
/** The security directory (the certificate table) is data directory 4. */
const SECURITY_DIRECTORY = 4;
export const SECTION_HEADER_SIZE = 40;

export interface PeSection {
  name: string;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
}

export interface PeHeaders {
  machine: number;
  /** File offsets of the fields the builders rewrite. */
  coffOffset: number;
  optionalOffset: number;
  checksumOffset: number;
  securityDirectoryOffset: number;
  sectionTableOffset: number;
  sizeOfHeaders: number;
  sizeOfImage: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfInitializedData: number;
  sections: PeSection[];
  /** Where the last section's file data ends (at least SizeOfHeaders). */
  rawEnd: number;
  /** The attribute certificate table, when the image carries one. */
  certificateTable?: { offset: number; size: number };
}

const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/**
 * Parses `data` as a PE32 or PE32+ image; anything out of bounds or inconsistent is ERR_PE_FORMAT
 * naming `what` (e.g. `the UKI stub`), the field, what was expected and what was found.
 *
 * @example
 * const h = parsePe(readFileSync('/usr/lib/systemd/boot/efi/linuxx64.efi.stub'), 'the UKI stub');
 * h.sections.map((s) => s.name); // ['.text', '.reloc', ..., '.sdmagic']
 */
export function parsePe(data: Buffer, what: string): PeHeaders {
  const fail = (message: string, context: Record<string, unknown> = {}): never => {
    throw new ComposeError('ERR_PE_FORMAT', `${what} is not a usable PE/COFF image: ${message}`, { what, size: data.length, ...context });
  };
  if (data.length < 0x40 || data[0] !== 0x4d || data[1] !== 0x5a) fail(`expected the DOS header 'MZ' at offset 0, found ${data.length < 2 ? `a ${data.length}-byte file` : `0x${data.subarray(0, 2).toString('hex')}`}`);
  const peOffset = data.readUInt32LE(0x3c);
  if (peOffset < 0x40 || peOffset > 0x10000 || peOffset + 24 > data.length) fail(`e_lfanew 0x${peOffset.toString(16)} points outside the file's first headers (${data.length} bytes)`, { field: 'e_lfanew' });
  if (data.readUInt32LE(peOffset) !== 0x4550) fail(`expected the signature 'PE\\0\\0' at 0x${peOffset.toString(16)}, found 0x${data.subarray(peOffset, peOffset + 4).toString('hex')}`);
  const coffOffset = peOffset + 4;
  const machine = data.readUInt16LE(coffOffset);
  const numberOfSections = data.readUInt16LE(coffOffset + 2);
  const optionalSize = data.readUInt16LE(coffOffset + 16);
  if (numberOfSections === 0 || numberOfSections > MAX_PE_SECTIONS) fail(`NumberOfSections is ${numberOfSections}, expected 1 to ${MAX_PE_SECTIONS}`, { field: 'NumberOfSections', found: numberOfSections });
  const optionalOffset = coffOffset + 20;
  if (optionalOffset + optionalSize > data.length || optionalSize < 2) fail(`SizeOfOptionalHeader ${optionalSize} runs past the end of the file`, { field: 'SizeOfOptionalHeader' });
  const magic = data.readUInt16LE(optionalOffset);
  if (magic !== 0x20b && magic !== 0x10b) fail(`optional header magic 0x${magic.toString(16)}, expected 0x20b (PE32+) or 0x10b (PE32)`, { field: 'Magic' });
  const directoriesOffset = optionalOffset + (magic === 0x20b ? 112 : 96);
  const rvaCountOffset = directoriesOffset - 4;
  if (rvaCountOffset + 4 > optionalOffset + optionalSize) fail(`SizeOfOptionalHeader ${optionalSize} is too small for the ${magic === 0x20b ? 'PE32+' : 'PE32'} fields`, { field: 'SizeOfOptionalHeader' });
  const rvaCount = data.readUInt32LE(rvaCountOffset);
  if (rvaCount <= SECURITY_DIRECTORY || rvaCount > 16 || directoriesOffset + 8 * rvaCount > optionalOffset + optionalSize) {
    fail(`NumberOfRvaAndSizes ${rvaCount} does not fit SizeOfOptionalHeader ${optionalSize} with a security directory (5 to 16 expected)`, { field: 'NumberOfRvaAndSizes' });
  }
  const sectionAlignment = data.readUInt32LE(optionalOffset + 32);
  const fileAlignment = data.readUInt32LE(optionalOffset + 36);
  if (!isPowerOfTwo(fileAlignment) || fileAlignment < 0x200 || fileAlignment > 0x10000) fail(`FileAlignment 0x${fileAlignment.toString(16)}, expected a power of two from 0x200 to 0x10000`, { field: 'FileAlignment' });
  if (!isPowerOfTwo(sectionAlignment) || sectionAlignment < fileAlignment || sectionAlignment > 0x10000) fail(`SectionAlignment 0x${sectionAlignment.toString(16)}, expected a power of two from FileAlignment to 0x10000`, { field: 'SectionAlignment' });
  const sizeOfImage = data.readUInt32LE(optionalOffset + 56);
  if (sizeOfImage > MAX_PE_IMAGE) fail(`SizeOfImage 0x${sizeOfImage.toString(16)} is over the ${MAX_PE_IMAGE} bytes an EFI binary may have here`, { field: 'SizeOfImage', found: sizeOfImage, max: MAX_PE_IMAGE });
  const sizeOfHeaders = data.readUInt32LE(optionalOffset + 60);
  const sectionTableOffset = optionalOffset + optionalSize;
  const sectionTableEnd = sectionTableOffset + SECTION_HEADER_SIZE * numberOfSections;
  if (sizeOfHeaders > data.length || sectionTableEnd > sizeOfHeaders) {
    fail(`the section table (${numberOfSections} sections, ending at 0x${sectionTableEnd.toString(16)}) and SizeOfHeaders 0x${sizeOfHeaders.toString(16)} do not fit the ${data.length}-byte file`, { field: 'SizeOfHeaders' });
  }
  const sections: PeSection[] = [];
  let rawEnd = sizeOfHeaders;
  for (let i = 0; i < numberOfSections; i++) {
    const o = sectionTableOffset + SECTION_HEADER_SIZE * i;
    const name = data.subarray(o, o + 8).toString('latin1').replace(/\0+$/, '');
    const s: PeSection = {
      name,
      virtualSize: data.readUInt32LE(o + 8),
      virtualAddress: data.readUInt32LE(o + 12),
      sizeOfRawData: data.readUInt32LE(o + 16),
      pointerToRawData: data.readUInt32LE(o + 20),
      characteristics: data.readUInt32LE(o + 36),
    };
    if (s.sizeOfRawData > 0 && (s.pointerToRawData < sizeOfHeaders || s.pointerToRawData + s.sizeOfRawData > data.length)) {
      fail(`section ${i} (${JSON.stringify(name)}) has file data at 0x${s.pointerToRawData.toString(16)}+0x${s.sizeOfRawData.toString(16)}, outside the headers' end 0x${sizeOfHeaders.toString(16)} to the file's end 0x${data.length.toString(16)}`, { field: 'PointerToRawData', section: name });
    }
    if (s.virtualAddress + Math.max(s.virtualSize, 0) > sizeOfImage) {
      fail(`section ${i} (${JSON.stringify(name)}) at RVA 0x${s.virtualAddress.toString(16)}+0x${s.virtualSize.toString(16)} ends past SizeOfImage 0x${sizeOfImage.toString(16)}`, { field: 'VirtualAddress', section: name });
    }
    if (s.sizeOfRawData > 0) rawEnd = Math.max(rawEnd, s.pointerToRawData + s.sizeOfRawData);
    sections.push(s);
  }
  const securityDirectoryOffset = directoriesOffset + 8 * SECURITY_DIRECTORY;
  const certOffset = data.readUInt32LE(securityDirectoryOffset);
  const certSize = data.readUInt32LE(securityDirectoryOffset + 4);
  let certificateTable: PeHeaders['certificateTable'];
  if (certSize > 0 || certOffset > 0) {
    // Firmware hashes everything before the table and nothing after it: it must be the file's end.
    if (certOffset < rawEnd || certOffset + certSize !== data.length) {
      fail(`the certificate table at 0x${certOffset.toString(16)}+0x${certSize.toString(16)} is not the end of the file after the sections (file ${data.length} bytes, sections end at 0x${rawEnd.toString(16)})`, { field: 'Certificate Table' });
    }
    certificateTable = { offset: certOffset, size: certSize };
  }
  return {
    machine,
    coffOffset,
    optionalOffset,
    checksumOffset: optionalOffset + 64,
    securityDirectoryOffset,
    sectionTableOffset,
    sizeOfHeaders,
    sizeOfImage,
    sectionAlignment,
    fileAlignment,
    sizeOfInitializedData: data.readUInt32LE(optionalOffset + 8),
    sections,
    rawEnd,
    ...(certificateTable ? { certificateTable } : {}),
  };
}

/**
 * Writes the optional header's CheckSum (the 16-bit folded sum of the file plus its length, the
 * field itself counted as zero), as the image's last change: it covers the certificate table.
 */
export function writePeChecksum(data: Buffer, h: PeHeaders): void {
  data.writeUInt32LE(0, h.checksumOffset);
  let sum = 0;
  const even = data.length & ~1;
  for (let i = 0; i < even; i += 2) {
    sum += data[i]! | (data[i + 1]! << 8);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (data.length & 1) {
    sum += data[data.length - 1]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  data.writeUInt32LE((sum + data.length) >>> 0, h.checksumOffset);
}

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

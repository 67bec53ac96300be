// STUB — to be implemented (bundle helper).
export async function fileDigest(_file: string): Promise<{ sha3_384: string; size: number }> {
  throw new Error('not implemented');
}

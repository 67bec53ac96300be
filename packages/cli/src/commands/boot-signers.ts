import { BootKeys, type BootSigner } from '@edgeimage/assertions';
import { resolve } from 'node:path';
import { UsageError } from '../output.js';
import { passphrase } from './common.js';

/**
 * The brand's db and FIT signers from a keyring's boot keys, refused when they are another
 * brand's: an image that only another brand's firmware would start is of no use to anyone.
 */
export function bootSignersOf(keyring: string, brand: string): { db: BootSigner; fit: BootSigner } {
  const boot = new BootKeys(resolve(keyring));
  const set = boot.show();
  if (set.brand !== brand) throw new UsageError(`--boot-keys ${keyring}: its boot keys are brand ${set.brand}'s, the model is brand ${brand}'s; make the brand's with "edgeimage boot-keys create --brand ${brand} --keyring DIR"`);
  const pass = passphrase();
  return { db: boot.signer('db', pass), fit: boot.signer('FIT', pass) };
}

export { Keyring, writeAtomic, type KeyInfo } from './keyring.js';

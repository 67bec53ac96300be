// STUB — to be implemented (store helper).
import type { Assertion, PrivateKey } from '@edgeimage/assertions';
import type { StoreBackend } from './backends/backend.js';
import type { SnapIndex, StoreMeta } from './layout.js';

export interface PublishResult {
  name: string;
  snapId: string;
  revision: number;
  sha3_384: string;
  size: number;
  architectures: string[];
  type: string;
  /** Assertions written: the snap-declaration (on first publish) and the snap-revision. */
  assertions: Assertion[];
}

export class Store {
  private constructor(readonly backend: StoreBackend, readonly meta: StoreMeta) {}
  /** Opens an existing store: a path or file:// (directory), http(s):// (read-only), oci://host:port/namespace. */
  static async open(_url: string): Promise<Store> {
    throw new Error('not implemented');
  }
  static async init(_url: string, _opts: { authorityId: string; key: PrivateKey; keyName: string }): Promise<Store> {
    throw new Error('not implemented');
  }
  async publish(_file: string, _opts: { channel: string; key: PrivateKey; publisher?: string; snapId?: string }): Promise<PublishResult> {
    throw new Error('not implemented');
  }
  async publishAssertion(_a: Assertion): Promise<string> {
    throw new Error('not implemented');
  }
  async release(_name: string, _revision: number, _channel: string): Promise<SnapIndex> {
    throw new Error('not implemented');
  }
  async list(): Promise<SnapIndex[]> {
    throw new Error('not implemented');
  }
  async snapIndex(_name: string): Promise<SnapIndex | undefined> {
    throw new Error('not implemented');
  }
  /** The assertion of `type` with this primary key (values in the type's primary-key order), or undefined. */
  async assertion(_type: string, _primaryKey: readonly string[]): Promise<Assertion | undefined> {
    throw new Error('not implemented');
  }
}

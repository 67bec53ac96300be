import { accountKeyHeaders, type Assertion, type Headers, PrivateKey, signAssertion } from '@edgeimage/assertions';

/**
 * An own root of trust built with fresh 2048-bit keys (snapd uses 4096; 2048 keeps tests fast):
 * root (self-signed, anchor), and helpers to vouch for more keys and sign assertions.
 */
export interface TestChain {
  rootKey: PrivateKey;
  /** Trust anchors: root account-key and root account. */
  anchors: Assertion[];
  account(id: string, extra?: Headers): Assertion;
  accountKey(key: PrivateKey, accountId: string, opts?: { since?: Date; until?: Date; name?: string; signer?: PrivateKey; authorityId?: string; revision?: number }): Assertion;
  sign(headers: Headers, key: PrivateKey, body?: string): Assertion;
}

export const SINCE = new Date('2026-01-01T00:00:00Z');

export async function newKey(): Promise<PrivateKey> {
  return PrivateKey.generate(2048);
}

export async function makeChain(rootId = 'acme-root'): Promise<TestChain> {
  const rootKey = await newKey();
  const sign = (headers: Headers, key: PrivateKey, body?: string) => signAssertion(headers, body, key);
  const account = (id: string, extra: Headers = {}) =>
    sign({ type: 'account', 'authority-id': rootId, 'account-id': id, 'display-name': id, validation: 'verified', timestamp: '2026-01-02T00:00:00Z', ...extra }, rootKey);
  const accountKey: TestChain['accountKey'] = (key, accountId, opts = {}) => {
    const { headers, body } = accountKeyHeaders(key.publicKey, {
      accountId,
      authorityId: opts.authorityId ?? rootId,
      since: opts.since ?? SINCE,
      until: opts.until,
      name: opts.name ?? 'default',
      revision: opts.revision,
    });
    return sign(headers, opts.signer ?? rootKey, body);
  };
  const anchors = [accountKey(rootKey, rootId, { name: 'root', since: new Date('2020-01-01T00:00:00Z') }), account(rootId)];
  return { rootKey, anchors, account, accountKey, sign };
}

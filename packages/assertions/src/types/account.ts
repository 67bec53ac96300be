import type { Assertion } from '../assertion.js';
import { HeaderChecks } from './checks.js';
import { viewBase, type ViewBase } from './common.js';
import { registerType, type AssertionType } from './registry.js';

export interface AccountView extends ViewBase {
  accountId: string;
  displayName: string;
  /**
   * The authority's confidence in the identity: `unproven`, `starred` or `verified`. The trusted
   * accounts compiled into snapd say `certified`, which snapd reads as `verified`; so do we.
   */
  validation: string;
  username?: string;
  timestamp: Date;
}

/**
 * `account` (snapd account.go). Only well-formedness is checked here; that an account must be signed
 * by a directly trusted authority is a cross-check of the trust layer, which knows the anchors.
 */
export const accountType: AssertionType<AccountView> = {
  name: 'account',
  primaryKey: ['account-id'],
  maxFormat: 0,
  hasTimestamp: true,
  assemble(a: Assertion): AccountView {
    const c: HeaderChecks = HeaderChecks.of(a);
    const accountId = c.string('account-id');
    const displayName = c.string('display-name');
    const validation = c.string('validation');
    const timestamp = c.date('timestamp');
    const username = c.optionalString('username');
    return {
      ...viewBase(c),
      accountId,
      displayName,
      validation: validation === 'certified' ? 'verified' : validation,
      ...(username !== undefined && username !== '' ? { username } : {}),
      timestamp,
    };
  },
};

registerType(accountType);

/**
 * The assertion types edgeimage understands. Importing this module registers them all, so
 * `assembleAssertion` and `refOf` know every type; import from here rather than a single type file.
 */
export * from './registry.js';
export * from './checks.js';
export * from './common.js';
export * from './account.js';
export * from './account-key.js';
export * from './model.js';
export * from './validation-set.js';
export * from './snap-declaration.js';
export * from './snap-revision.js';

// Two projects: `fast` (everything without a VM) and `qemu` (boots; slow). Run the fast tests
// alone with `npm run test:fast` or `./scripts/test --fast`.
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  moduleNameMapper: {
    // Test helpers are modules of @edgeimage/testkit, imported one by one (`@edgeimage/testkit/image-world`).
    '^@edgeimage/testkit/([a-z0-9-]+)$': '<rootDir>/packages/testkit/src/$1.ts',
    '^@edgeimage/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testEnvironment: 'node',
  // Only the packages hold tests; images/ and bundles/ hold .snap bundles jest would take for snapshots.
  roots: ['<rootDir>/packages'],
};

export default {
  // the longest QEMU files first, so that both cores stay busy to the end (jest.sequencer.js)
  testSequencer: '<rootDir>/jest.sequencer.js',
  // and each file's result as it ends, for scripts/test (EDGEIMAGE_PARTIAL_RESULTS; else nothing)
  reporters: ['default', '<rootDir>/scripts/jest-partial-reporter.mjs'],
  projects: [
    { ...common, displayName: 'fast', testMatch: ['<rootDir>/packages/*/src/**/*.test.ts', '<rootDir>/packages/*/test/**/*.test.ts'], testPathIgnorePatterns: ['\\.qemu\\.test\\.ts$', '/node_modules/', '/dist/'] },
    { ...common, displayName: 'qemu', setupFilesAfterEnv: ['<rootDir>/jest.qemu-setup.js'], testMatch: ['<rootDir>/packages/*/src/**/*.qemu.test.ts', '<rootDir>/packages/*/test/**/*.qemu.test.ts'] },
  ],
};

// tsc compiles the tests into dist/ first (scripts/run.sh), so jest runs the same JavaScript that ships.
// QUBESEC_TESTS picks the suite: "unit" (controller/, no I/O beyond temp files), "e2e" (real API server, NGINX, curl).
const suites = { unit: ['<rootDir>/dist/controller'], e2e: ['<rootDir>/dist/e2e'] };
export default {
  testEnvironment: 'node',
  roots: suites[process.env.QUBESEC_TESTS ?? ''] ?? [...suites.unit, ...suites.e2e],
  testMatch: ['**/*.test.js'],
  transform: {},
  testTimeout: 120000,
  // A leaked handle must not hang CI: the teardown names what is left open, then jest exits.
  globalTeardown: '<rootDir>/dist/e2e/teardown.js',
  forceExit: true,
};

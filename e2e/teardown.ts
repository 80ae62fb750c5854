// Jest's globalTeardown, after every test file: names what still keeps the process alive (a server, socket, timer or
// child process a test did not close), so a leak shows in the output; jest.config.js's forceExit then ends the run
// instead of letting it hang until CI's time limit.
export default async function reportLeftovers(): Promise<void> {
  // Sockets closed in the last afterAll need a moment to go. Not an unref'd timer: with nothing else left, Node would
  // exit while jest awaits this teardown, with code 0 whatever the tests did.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const left = process.getActiveResourcesInfo().filter((type) => !['TTYWrap', 'PipeWrap', 'FSReqCallback'].includes(type));
  if (left.length === 0) return;
  const counts = new Map<string, number>();
  for (const type of left) counts.set(type, (counts.get(type) ?? 0) + 1);
  console.error(`still open after the tests: ${[...counts].map(([type, n]) => `${n} ${type}`).join(', ')}`);
}

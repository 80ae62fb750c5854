import { jest } from '@jest/globals';
import { Coalescer, MAX_WAIT_DEBOUNCES } from './coalescer.js';

describe('Coalescer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const counting = () => {
    const runs: number[] = [];
    const coalescer = new Coalescer(async () => void runs.push(Date.now()), 100, (err) => { throw err; });
    return { runs, coalescer };
  };

  it('runs once after a burst has gone quiet', async () => {
    const { runs, coalescer } = counting();
    for (let i = 0; i < 5; i++) {
      coalescer.schedule();
      await jest.advanceTimersByTimeAsync(50);
    }
    expect(runs).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(60);
    expect(runs).toHaveLength(1);
  });

  it('still runs during changes that never go quiet, at most MAX_WAIT_DEBOUNCES quiet times apart', async () => {
    const { runs, coalescer } = counting();
    const start = Date.now();
    for (let t = 0; t < 3000; t += 20) {
      coalescer.schedule();
      await jest.advanceTimersByTimeAsync(20);
    }
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(runs[0]! - start).toBeLessThanOrEqual(100 * MAX_WAIT_DEBOUNCES);
    for (let i = 1; i < runs.length; i++) expect(runs[i]! - runs[i - 1]!).toBeLessThanOrEqual(100 * MAX_WAIT_DEBOUNCES + 20);
    await coalescer.stop();
  });
});

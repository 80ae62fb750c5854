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

  it('syncs the first change after a quiet time at once, and the changes that follow once they have gone quiet', async () => {
    const { runs, coalescer } = counting();
    const start = Date.now();
    for (let i = 0; i < 5; i++) {
      coalescer.schedule();
      await jest.advanceTimersByTimeAsync(50);
    }
    expect(runs).toEqual([start]);
    await jest.advanceTimersByTimeAsync(60);
    expect(runs).toHaveLength(2);
    expect(runs[1]! - start).toBe(300);
  });

  it('gathers the changes told in one turn into the sync at once', async () => {
    const { runs, coalescer } = counting();
    coalescer.schedule();
    coalescer.schedule();
    coalescer.schedule();
    await jest.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(500);
    expect(runs).toHaveLength(1);
  });

  it('syncs at once again only after a quiet time since the last change', async () => {
    const { runs, coalescer } = counting();
    const start = Date.now();
    coalescer.schedule();
    await jest.advanceTimersByTimeAsync(99);
    coalescer.schedule(); // 99 ms after the last change: gathered
    await jest.advanceTimersByTimeAsync(99);
    expect(runs).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2);
    const quietAt = Date.now();
    coalescer.schedule(); // 100 ms after it: at once
    await jest.advanceTimersByTimeAsync(0);
    expect(runs).toEqual([start, start + 199, quietAt]);
    expect(quietAt).toBe(start + 199);
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

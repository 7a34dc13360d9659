// The batch window: many triggers, one run; runs never overlap.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createBatcher } from '../../src/batcher.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('batcher', () => {
  it('gathers every trigger inside the window into one run at its end', async () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    const batcher = createBatcher({ windowMs: 2000, run: async (n) => void runs.push(n) });
    for (let i = 0; i < 500; i += 1) {
      batcher.trigger();
      await vi.advanceTimersByTimeAsync(3);
    }
    expect(runs).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000);
    expect(runs).toEqual([500]);
  });

  it('tells how long the open window has left, and nothing while idle or running', async () => {
    vi.useFakeTimers();
    let release: () => void = () => undefined;
    const batcher = createBatcher({
      windowMs: 2000,
      run: () => new Promise<void>((resolve) => (release = resolve)),
    });
    expect(batcher.windowRemainingMs()).toBeUndefined();
    batcher.trigger();
    await vi.advanceTimersByTimeAsync(500);
    expect(batcher.windowRemainingMs()).toBe(1500);
    await vi.advanceTimersByTimeAsync(1500);
    expect(batcher.windowRemainingMs()).toBeUndefined();
    release();
    await batcher.idle();
    expect(batcher.windowRemainingMs()).toBeUndefined();
  });

  it('opens the window at the first trigger after a quiet period, not at the last one', async () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    const batcher = createBatcher({ windowMs: 100, run: async (n) => void runs.push(n) });
    batcher.trigger();
    await vi.advanceTimersByTimeAsync(90);
    batcher.trigger();
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toEqual([2]);
  });

  it('never overlaps runs: a trigger during a run waits for it and opens the next window', async () => {
    vi.useFakeTimers();
    let active = 0;
    let maxActive = 0;
    const runs: number[] = [];
    const batcher = createBatcher({
      windowMs: 10,
      run: async (n) => {
        active += 1;
        maxActive = Math.max(maxActive, active);
        await new Promise((resolve) => setTimeout(resolve, 50));
        runs.push(n);
        active -= 1;
      },
    });
    batcher.trigger();
    await vi.advanceTimersByTimeAsync(20);
    batcher.trigger();
    batcher.trigger();
    await vi.advanceTimersByTimeAsync(200);
    expect(runs).toEqual([1, 2]);
    expect(maxActive).toBe(1);
  });

  it('runs without batching when the window is 0, and idle() waits for the run', async () => {
    const runs: number[] = [];
    const batcher = createBatcher({ windowMs: 0, run: async (n) => void runs.push(n) });
    batcher.trigger();
    await batcher.idle();
    expect(runs).toEqual([1]);
  });

  it('reports a failing run and keeps going', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const batcher = createBatcher({
      windowMs: 0,
      run: async () => {
        calls += 1;
        if (calls === 1) throw new Error('boom');
      },
      onError: (e) => errors.push(e),
    });
    batcher.trigger();
    await batcher.idle();
    batcher.trigger();
    await batcher.idle();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
  });

  it('runs nothing after stop()', async () => {
    vi.useFakeTimers();
    const runs: number[] = [];
    const batcher = createBatcher({ windowMs: 100, run: async (n) => void runs.push(n) });
    batcher.trigger();
    batcher.stop();
    batcher.trigger();
    await vi.advanceTimersByTimeAsync(500);
    expect(runs).toEqual([]);
  });
});

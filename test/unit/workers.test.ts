import { describe, expect, it } from 'vitest';
import { type Worker, workersToRetire } from '../../src/nginx/workers.js';

const worker = (pid: number, state: Partial<Omit<Worker, 'pid'>> = {}): Worker => ({
  pid,
  serving: true,
  shuttingDown: false,
  ...state,
});

describe('which old workers dispatcher tells to quit after a reload', () => {
  const before = [worker(10), worker(11), worker(12, { serving: false })]; // 12: a cache manager

  it('none while no new worker serves: the reload may have failed, the old ones keep serving', () => {
    expect(workersToRetire(before, before)).toEqual([]);
    // A child just forked still carries the master's title: it has not joined the listening sockets.
    expect(workersToRetire(before, [...before, worker(20, { serving: false })])).toEqual([]);
    expect(workersToRetire(before, [...before, worker(20, { shuttingDown: true })])).toEqual([]);
  });

  it('every old worker still accepting once a new one serves, and only those', () => {
    const now = [worker(10), worker(11, { shuttingDown: true }), worker(12, { serving: false }), worker(20)];
    expect(workersToRetire(before, now)).toEqual([10]);
    expect(workersToRetire(before, [worker(10), worker(11), worker(20), worker(21)])).toEqual([10, 11]);
  });

  it('never a worker that was not listed before the reload', () => {
    expect(workersToRetire([], [worker(20), worker(21)])).toEqual([]);
    expect(workersToRetire(before, [worker(20), worker(21)])).toEqual([]);
  });
});

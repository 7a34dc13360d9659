// The bench's own arithmetic: what it reads from wrk, how it joins segments of load, and how it
// decides that the controller's resets under reloads are no worse than bare nginx's. A wrong sum or
// a wrong noise estimate would print a wrong "met" without any run failing.
import { describe, expect, it } from 'vitest';
import { compareResets, type ResetCount } from '../../bench/resets.js';
import { percentile, summarize } from '../../bench/stats.js';
import { errorCount, mergeWrk, parseWrk } from '../../bench/wrk.js';

// wrk 4.1's report (Debian's package), with the two lines it prints only when there are errors.
const WRK_REPORT = `Running 5s test @ http://127.0.0.1:41234/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.32ms  812.40us  15.43ms   91.02%
    Req/Sec    12.07k     1.01k   13.52k    74.00%
  Latency Distribution
     50%    1.18ms
     75%    1.41ms
     90%    1.83ms
     99%    4.96ms
  60388 requests in 5.00s, 19.54MB read
  Socket errors: connect 0, read 43, write 2, timeout 0
  Non-2xx or 3xx responses: 7
Requests/sec:  12077.60
Transfer/sec:      3.91MB
`;

describe('wrk report', () => {
  it('reads requests, rate, percentiles, errors and non-2xx', () => {
    const result = parseWrk(WRK_REPORT);
    expect(result.requests).toBe(60388);
    expect(result.requestsPerSecond).toBeCloseTo(12077.6);
    expect(result.latencyP50Ms).toBeCloseTo(1.18);
    expect(result.latencyP99Ms).toBeCloseTo(4.96);
    expect(result.non2xx).toBe(7);
    expect(result.errors).toEqual({ connect: 0, read: 43, write: 2, timeout: 0 });
    expect(errorCount(result)).toBe(45);
  });

  it('reads a clean run as no errors (wrk omits the lines)', () => {
    const clean = WRK_REPORT.replace(/ {2}Socket errors.*\n/, '').replace(/ {2}Non-2xx.*\n/, '');
    const result = parseWrk(clean);
    expect(result.non2xx).toBe(0);
    expect(errorCount(result)).toBe(0);
  });

  it('joins segments: counts add up, the rate is over the whole time, p99 is the worst segment', () => {
    const a = parseWrk(WRK_REPORT);
    const b = parseWrk(WRK_REPORT.replace('60388 requests', '39612 requests').replace('4.96ms', '9.50ms'));
    const joined = mergeWrk([a, b], 10);
    expect(joined.requests).toBe(100_000);
    expect(joined.requestsPerSecond).toBe(10_000);
    expect(joined.latencyP99Ms).toBeCloseTo(9.5);
    expect(joined.non2xx).toBe(14);
    expect(joined.errors).toEqual({ connect: 0, read: 86, write: 4, timeout: 0 });
  });
});

describe('keep-alive resets, controller against bare nginx', () => {
  const segments = (...resets: number[]): ResetCount[] => resets.map((r) => ({ resets: r, reloads: 8 }));

  it('meets when both sides clump alike around the same mean', () => {
    // Segments as measured: the same 8 reloads gave anywhere from 19 to 78 resets.
    const result = compareResets(segments(78, 29, 39, 62), segments(19, 37, 24, 41));
    expect(result.excess).toBe(87);
    expect(result.met).toBe(true);
  });

  it('does not meet when the controller resets steadily twice as many', () => {
    const result = compareResets(segments(80, 84, 78, 82, 81, 79), segments(40, 42, 39, 41, 40, 38));
    expect(result.excess).toBe(244);
    expect(result.met).toBe(false);
  });

  it('uses counting noise as the floor when segments agree too well to estimate a spread', () => {
    // Spread between segments is 0 here: only the Poisson noise of 200 + 100 counts remains.
    const result = compareResets(segments(50, 50, 50, 50), segments(25, 25, 25, 25));
    expect(result.twoSigma).toBeCloseTo(2 * Math.sqrt(300));
    expect(result.met).toBe(false);
  });

  it('scales the baseline to the controller’s reloads', () => {
    const controller = [{ resets: 60, reloads: 12 }];
    const bare = [{ resets: 100, reloads: 20 }];
    expect(compareResets(controller, bare).excess).toBe(0);
  });

  it('without baseline reloads, meets only with no resets', () => {
    expect(compareResets(segments(0), [{ resets: 0, reloads: 0 }]).met).toBe(true);
    expect(compareResets(segments(3), [{ resets: 0, reloads: 0 }]).met).toBe(false);
  });
});

describe('summaries', () => {
  it('takes nearest-rank percentiles: p99 of 21 samples is the largest', () => {
    const samples = Array.from({ length: 21 }, (_, i) => i + 1);
    expect(percentile(samples, 99)).toBe(21);
    expect(percentile(samples, 50)).toBe(11);
    const summary = summarize([5, 1, 3]);
    expect([summary.min, summary.median, summary.max]).toEqual([1, 3, 5]);
  });
});

// The batch window of SPEC section 4: the first trigger after a quiet period opens a window of
// `windowMs`; every trigger inside it joins; when it closes, `run` runs once. Runs never overlap:
// a trigger during a run opens the next window, which starts after the run ends.

export interface Batcher {
  /** Something changed: make sure a run happens at the end of the current (or a new) window. */
  trigger(): void;
  /** Milliseconds until the open window closes; undefined when none is open (idle or running). */
  windowRemainingMs(): number | undefined;
  /** Resolves when no window is open and no run is in flight. */
  idle(): Promise<void>;
  /** No further runs: an open window is dropped, a run in flight finishes. */
  stop(): void;
}

export interface BatcherOptions {
  windowMs: number;
  /** Receives how many triggers the window gathered. */
  run: (triggers: number) => Promise<void>;
  onError?: (error: unknown) => void;
}

export function createBatcher({ windowMs, run, onError }: BatcherOptions): Batcher {
  let pending = 0;
  let timer: NodeJS.Timeout | undefined;
  let closesAt = 0;
  let running: Promise<void> | undefined;
  let stopped = false;
  let waiters: (() => void)[] = [];

  const settleIfIdle = (): void => {
    if (timer !== undefined || running !== undefined || pending > 0) return;
    const ready = waiters;
    waiters = [];
    for (const resolve of ready) resolve();
  };

  const open = (): void => {
    if (timer !== undefined || running !== undefined || stopped) return;
    closesAt = performance.now() + windowMs;
    timer = setTimeout(fire, windowMs);
  };

  function fire(): void {
    timer = undefined;
    const triggers = pending;
    pending = 0;
    running = run(triggers)
      .catch((error: unknown) => onError?.(error))
      .finally(() => {
        running = undefined;
        if (pending > 0) open();
        settleIfIdle();
      });
  }

  return {
    trigger() {
      if (stopped) return;
      pending += 1;
      open();
    },
    windowRemainingMs() {
      return timer === undefined ? undefined : Math.max(0, closesAt - performance.now());
    },
    idle() {
      return new Promise<void>((resolve) => {
        waiters.push(resolve);
        settleIfIdle();
      });
    },
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      pending = 0;
      settleIfIdle();
    },
  };
}

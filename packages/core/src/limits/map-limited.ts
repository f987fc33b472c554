/**
 * `Promise.all(items.map(fn))` with at most `limit` calls in flight, used wherever work fans out over a
 * dataset's files. Issued all at once, thousands of store reads queue inside the S3 client until its request
 * timeout fires, and a fine-tune fails on a store that was merely busy.
 */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  // Every worker finishes its current call before the first error is thrown, so nothing is still running
  // when the caller reacts (e.g. cleans up what the calls stored).
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return out;
}

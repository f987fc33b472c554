/**
 * `Promise.all(items.map(fn))` with at most `limit` calls in flight. A fine-tune loads thousands of dataset
 * files; issued all at once they queue inside the S3 client until its request timeout fires, and the job fails
 * on a store that was merely busy.
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
  // against the store when the caller reacts.
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure !== null) throw (failure as { error: unknown }).error;
  return out;
}

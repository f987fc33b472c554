/**
 * Runs tasks one at a time per key (a tenant) in this process; tasks of different keys never wait on each
 * other. For "check a quota, then use it" sequences, which two concurrent requests would otherwise both pass.
 */
export class PerKeySerial {
  private readonly chains = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    // A failed task does not fail the ones queued behind it.
    const mine = prev.catch(() => undefined).then(task);
    this.chains.set(key, mine);
    try {
      return await mine;
    } finally {
      // Only the last task in the chain may clear it, or a later one would lose its place.
      if (this.chains.get(key) === mine) this.chains.delete(key);
    }
  }
}

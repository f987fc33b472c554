/** Builds the per-process services from settings: storage (embedded locally), keys, logger. */
import { loadSettings, type Settings } from "@ganserve/core/config";
import { ensureDevKey, KeyRing } from "@ganserve/core/auth/keys";
import { createLogger } from "@ganserve/core/log";
import { openStorage, type OpenedStorage } from "@ganserve/core/storage/index";
import type { Services } from "./api/env.ts";

export interface Runtime {
  services: Services;
  opened: OpenedStorage;
  /** Set when no key was configured and a dev key was generated (printed by `npm start`). */
  devKey?: string;
  close(): Promise<void>;
}

export async function createRuntime(settings: Settings = loadSettings()): Promise<Runtime> {
  const log = createLogger(settings.GANSERVE_LOG_LEVEL);
  const opened = await openStorage(settings);
  let devKey: string | undefined;
  let keys: KeyRing;
  if (settings.GANSERVE_API_KEYS) keys = KeyRing.fromList(settings.GANSERVE_API_KEYS);
  else if (settings.GANSERVE_PRODUCTION) throw new Error("GANSERVE_API_KEYS must be set in production mode");
  else keys = KeyRing.fromList((devKey = ensureDevKey(settings.dataDir)));
  const services: Services = {
    settings,
    storage: opened.storage,
    keys,
    log,
    readiness: new Map(),
    startedAt: Date.now(),
  };
  return { services, opened, devKey, close: () => opened.close() };
}

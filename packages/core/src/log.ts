/** Structured JSON logs (one object per line) so they read the same in a terminal and in CloudWatch. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(level: string = process.env.GANSERVE_LOG_LEVEL ?? "info"): Logger {
  return pino({ level, base: { service: "ganserve" }, timestamp: pino.stdTimeFunctions.isoTime });
}

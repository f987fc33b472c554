import type { MiddlewareHandler } from "hono";
import { ApiError } from "@ganserve/core/errors";

/**
 * The deepest nesting of objects and arrays a JSON request body may have. No request shape needs more than a
 * few levels (options, latent vectors); code that walks a parsed body recursively (zod, JSON.stringify when a
 * job is saved) overflows the stack somewhere past a few thousand.
 */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether a JSON text nests objects/arrays deeper than `limit`. One pass, no recursion, stops at the first
 * bracket past the limit; brackets inside strings do not count. The text need not be valid JSON: the parser
 * that runs next reports that.
 */
export function jsonNestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

const JSON_TYPE = /^application\/(.+\+)?json\b/i;

/**
 * Every JSON body, before any route parses it: 400 validation_failed (details.reason "json_too_deep") past
 * MAX_JSON_DEPTH levels. Runs after the body-size limit; the text it reads is cached by Hono, so the route's
 * validator parses the same text once and nothing reads the body twice.
 */
export const boundedJsonDepth: MiddlewareHandler = async (c, next) => {
  if (c.req.raw.body && JSON_TYPE.test(c.req.header("content-type") ?? "")) {
    if (jsonNestsDeeperThan(await c.req.text(), MAX_JSON_DEPTH))
      throw new ApiError("validation_failed", `request body nests objects/arrays deeper than ${MAX_JSON_DEPTH} levels`, {
        reason: "json_too_deep",
        limit: MAX_JSON_DEPTH,
      });
  }
  await next();
};

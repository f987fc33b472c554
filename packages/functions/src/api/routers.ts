/** The /v1 routers, in one list so every entry point mounts the same API. */
import type { V1Mount } from "./app.ts";

export const v1Routers: V1Mount[] = [];

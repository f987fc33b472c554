/** GPU inference container entry point: the same API, without the playground (see containers/). */
import { start } from "./http-server.ts";

start({ web: false });

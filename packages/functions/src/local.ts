/** `npm start`: API, embedded storage and the playground in one process. */
import { start } from "./http-server.ts";

start({ web: true });

export { RandomState, seedToZ } from "./randomstate.ts";

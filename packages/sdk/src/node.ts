/**
 * @ganserve/sdk for Node: everything from the main entry, and file paths accepted wherever a file is
 * (translate inputs, dataset zips). Also reads GANSERVE_BASE_URL / GANSERVE_API_KEY when not given.
 */
import fs from "node:fs";
import path from "node:path";
import { GanserveClient } from "./client.ts";
import type { FileInput, NamedBlob } from "./files.ts";
import type { ClientOptions } from "./http.ts";

export * from "./index.ts";

/** Either a file input or a path to one. */
export type NodeFileInput = FileInput | string;

export async function readPath(file: string): Promise<NamedBlob> {
  const name = path.basename(file);
  // A file-backed blob streams from disk when sent, so a large dataset zip is never held in memory.
  if (typeof fs.openAsBlob === "function") return { blob: await fs.openAsBlob(file), name };
  return { blob: new Blob([await fs.promises.readFile(file)]), name };
}

export type NodeClientOptions = Omit<ClientOptions, "baseUrl" | "apiKey"> & { baseUrl?: string; apiKey?: string };

export class Ganserve extends GanserveClient<NodeFileInput> {
  constructor(opts: NodeClientOptions = {}) {
    const baseUrl = opts.baseUrl ?? process.env.GANSERVE_BASE_URL;
    const apiKey = opts.apiKey ?? process.env.GANSERVE_API_KEY;
    if (!baseUrl) throw new TypeError("Ganserve: pass baseUrl or set GANSERVE_BASE_URL");
    if (!apiKey) throw new TypeError("Ganserve: pass apiKey or set GANSERVE_API_KEY");
    super({ ...opts, baseUrl, apiKey }, readPath);
  }
}
export default Ganserve;

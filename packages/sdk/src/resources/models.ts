import type { HttpClient, RequestOptions } from "../http.ts";
import type { DirectionInfo, DirectionList, DirectionUpload, ModelInfo, ModelList, ModelVersion } from "../types.ts";

export class Models {
  constructor(private readonly http: HttpClient) {}

  /** Every model this key can use: shared base models and the tenant's own fine-tunes. */
  list(opts?: RequestOptions): Promise<ModelList> {
    return this.http.json({ method: "GET", path: "/v1/models" }, opts);
  }

  get(name: string, opts?: RequestOptions): Promise<ModelInfo> {
    return this.http.json({ method: "GET", path: `/v1/models/${encodeURIComponent(name)}` }, opts);
  }

  /** A StyleGAN2 version's directions in w for `edits`: SeFa's (largest eigenvalue first) and your uploads. */
  directions(name: string, version = "latest", opts?: RequestOptions): Promise<DirectionList> {
    return this.http.json({ method: "GET", path: `${versionPath(name, version)}/directions` }, opts);
  }

  /** One direction with its unit vector. */
  direction(name: string, version: string, direction: string, opts?: RequestOptions): Promise<DirectionInfo> {
    return this.http.json({ method: "GET", path: `${versionPath(name, version)}/directions/${encodeURIComponent(direction)}` }, opts);
  }

  /** Stores a named direction (e.g. an InterFaceGAN boundary; normalised to unit length) for your edits. */
  putDirection(body: DirectionUpload, opts?: RequestOptions): Promise<DirectionInfo> {
    // Storing a name again replaces it with the same vector, so a retry is safe.
    return this.http.json({ method: "POST", path: "/v1/directions", json: body, idempotent: true }, opts);
  }

  async deleteDirection(name: string, version: string, direction: string, opts?: RequestOptions): Promise<void> {
    await this.http.send({ method: "DELETE", path: `${versionPath(name, version)}/directions/${encodeURIComponent(direction)}` }, opts ?? {}, async () => undefined);
  }

  /** One version's record (`"latest"` resolves to the newest). */
  version(name: string, version = "latest", opts?: RequestOptions): Promise<ModelVersion> {
    return this.http.json({ method: "GET", path: versionPath(name, version) }, opts);
  }
}

const versionPath = (name: string, version: string) => `/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`;

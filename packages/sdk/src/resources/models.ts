import type { HttpClient, RequestOptions } from "../http.ts";
import type { ModelInfo, ModelList, ModelVersion } from "../types.ts";

export class Models {
  constructor(private readonly http: HttpClient) {}

  /** Every model this key can use: shared base models and the tenant's own fine-tunes. */
  list(opts?: RequestOptions): Promise<ModelList> {
    return this.http.json({ method: "GET", path: "/v1/models" }, opts);
  }

  get(name: string, opts?: RequestOptions): Promise<ModelInfo> {
    return this.http.json({ method: "GET", path: `/v1/models/${encodeURIComponent(name)}` }, opts);
  }

  /** One version's record (`"latest"` resolves to the newest). */
  version(name: string, version = "latest", opts?: RequestOptions): Promise<ModelVersion> {
    return this.http.json({ method: "GET", path: `/v1/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}` }, opts);
  }
}

import { DatasetFailedError, GanserveError } from "../errors.ts";
import { toNamedBlob, type FileResolver } from "../files.ts";
import type { HttpClient, RequestOptions } from "../http.ts";
import type { CreateDatasetRequest, Dataset, DatasetList } from "../types.ts";

/** Uploads are one large body; the client-wide timeout is sized for API calls, not for this. */
export const UPLOAD_TIMEOUT_MS = 10 * 60_000;

// fetch computes these from the body (and some runtimes refuse them); sending a signed value twice breaks S3.
const NOT_FORWARDED = new Set(["content-length", "host"]);

export class Datasets<F> {
  constructor(
    private readonly http: HttpClient,
    private readonly resolveFile: FileResolver | undefined,
  ) {}

  /** A dataset awaiting its zip, with a presigned `upload` to PUT it to. */
  create(req: CreateDatasetRequest = {}, opts?: RequestOptions): Promise<Dataset> {
    return this.http.json({ method: "POST", path: "/v1/datasets", json: req, idempotent: false }, opts);
  }

  /**
   * PUTs the zip to the dataset's presigned URL, with its signed headers and without the API key (the URL
   * is the credential, and it may point at another host). Default timeout: UPLOAD_TIMEOUT_MS.
   */
  async uploadBytes(dataset: Pick<Dataset, "id" | "upload">, zip: F, opts: RequestOptions = {}): Promise<void> {
    const upload = dataset.upload;
    if (!upload)
      throw new TypeError(`dataset ${dataset.id} has no upload URL (only a dataset awaiting upload has one); create a new dataset`);
    const { blob } = await toNamedBlob(zip, "dataset.zip", this.resolveFile);
    const headers = Object.fromEntries(Object.entries(upload.headers).filter(([k]) => !NOT_FORWARDED.has(k.toLowerCase())));
    await this.http.send(
      { method: upload.method, path: upload.url, body: blob, headers, auth: false, idempotent: true },
      { ...opts, timeoutMs: opts.timeoutMs ?? UPLOAD_TIMEOUT_MS },
      async (res) => void (await res.arrayBuffer()),
    );
  }

  /** Validates and indexes the uploaded zip; idempotent on the server once the dataset is ready. */
  finalize(id: string, opts?: RequestOptions): Promise<Dataset> {
    return this.http.json({ method: "POST", path: `/v1/datasets/${encodeURIComponent(id)}/finalize`, idempotent: true }, opts);
  }

  get(id: string, opts?: RequestOptions): Promise<Dataset> {
    return this.http.json({ method: "GET", path: `/v1/datasets/${encodeURIComponent(id)}` }, opts);
  }

  list(opts?: RequestOptions): Promise<DatasetList> {
    return this.http.json({ method: "GET", path: "/v1/datasets" }, opts);
  }

  /**
   * create + PUT + finalize. Resolves with the ready dataset (check `rejected` for files that were left
   * out); throws DatasetFailedError when the archive as a whole was refused.
   */
  async upload(zip: F, req: CreateDatasetRequest = {}, opts: RequestOptions = {}): Promise<Dataset> {
    const { timeoutMs, ...rest } = opts;
    const created = await this.create(req, rest);
    await this.uploadBytes(created, zip, opts);
    let dataset: Dataset;
    try {
      // Finalize reads the whole archive server-side, so it gets the upload's patience too.
      dataset = await this.finalize(created.id, { ...rest, timeoutMs: timeoutMs ?? UPLOAD_TIMEOUT_MS });
    } catch (e) {
      // A refused archive comes back as a 4xx, and its record says why.
      if (!(e instanceof GanserveError) || e.status === undefined || e.status >= 500 || e.code === "unauthorized") throw e;
      const record = await this.get(created.id, rest).catch(() => undefined);
      if (record?.status !== "failed" && !["invalid_archive", "payload_too_large"].includes(e.code)) throw e;
      const reason = record?.error?.code ?? (e.details as { reason?: string } | undefined)?.reason;
      throw new DatasetFailedError({ message: `dataset ${created.id} was rejected: ${e.message}`, dataset: record, reason, cause: e });
    }
    if (dataset.status === "failed") {
      const why = dataset.error ? `${dataset.error.code}: ${dataset.error.message}` : "no reason recorded";
      throw new DatasetFailedError({ message: `dataset ${dataset.id} was rejected (${why})`, dataset });
    }
    return dataset;
  }
}

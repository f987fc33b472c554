import { DatasetFailedError, GanserveError } from "../errors.ts";
import { toNamedBlob, type FileResolver, type NamedBlob } from "../files.ts";
import { sleep, type HttpClient, type RequestOptions } from "../http.ts";
import type { CreateDatasetRequest, Dataset, DatasetList } from "../types.ts";

/** Uploads are one large body; the client-wide timeout is sized for API calls, not for this. */
export const UPLOAD_TIMEOUT_MS = 10 * 60_000;
/** A finalize job that runs on a cold AWS Batch instance takes minutes: poll it at most this often. */
const FINALIZE_POLL_MAX_MS = 5_000;
/** Past this a finalize job is taken for lost (the server starts it again on the next finalize after 2 h). */
const FINALIZE_MAX_WAIT_MS = 60 * 60_000;

export class Datasets<F> {
  constructor(
    private readonly http: HttpClient,
    private readonly resolveFile: FileResolver | undefined,
  ) {}

  /**
   * A dataset awaiting its zip, with a presigned `upload` form to POST it to. Pass `size_bytes` (the zip's
   * size) to hold only that much of the dataset quota; the form accepts no larger zip.
   */
  create(req: CreateDatasetRequest = {}, opts?: RequestOptions): Promise<Dataset> {
    return this.http.json({ method: "POST", path: "/v1/datasets", json: req, idempotent: false }, opts);
  }

  /**
   * POSTs the zip to the dataset's presigned upload form (S3's browser upload: the signed fields, then the
   * file, last) without the API key: the form is the credential, and it may point at another host. A zip
   * over `upload.max_bytes` is refused before anything is sent. Default timeout: UPLOAD_TIMEOUT_MS.
   */
  async uploadBytes(dataset: Pick<Dataset, "id" | "upload">, zip: F, opts: RequestOptions = {}): Promise<void> {
    await this.post(dataset, await toNamedBlob(zip, "dataset.zip", this.resolveFile), opts);
  }

  private async post(dataset: Pick<Dataset, "id" | "upload">, { blob, name }: NamedBlob, opts: RequestOptions): Promise<void> {
    const upload = dataset.upload;
    if (!upload)
      throw new TypeError(`dataset ${dataset.id} has no upload form (only a dataset awaiting upload has one); create a new dataset`);
    if (blob.size > upload.max_bytes)
      throw new RangeError(`the zip is ${blob.size} bytes; dataset ${dataset.id}'s upload form accepts at most ${upload.max_bytes}`);
    const form = new FormData();
    for (const [k, v] of Object.entries(upload.fields)) form.append(k, v);
    form.append(upload.file_field, blob, name);
    await this.http.send(
      { method: upload.method, path: upload.url, body: form, auth: false, idempotent: true },
      { ...opts, timeoutMs: opts.timeoutMs ?? UPLOAD_TIMEOUT_MS },
      async (res) => void (await res.arrayBuffer()),
    );
  }

  /**
   * Validates and indexes the uploaded zip, and resolves with the dataset once that ended (`ready`, or
   * `failed` with its error). The server runs it as a job: it may answer 202 `processing` (always when
   * deployed), and then the dataset is polled until it is not. Idempotent on the server once ready.
   */
  async finalize(id: string, opts: RequestOptions = {}): Promise<Dataset> {
    let dataset: Dataset = await this.http.json({ method: "POST", path: `/v1/datasets/${encodeURIComponent(id)}/finalize`, idempotent: true }, opts);
    const until = Date.now() + FINALIZE_MAX_WAIT_MS;
    for (let delay = 500; dataset.status === "processing"; delay = Math.min(FINALIZE_POLL_MAX_MS, delay * 2)) {
      if (Date.now() > until) throw new GanserveError({ code: "wait_timeout", message: `dataset ${id} is still processing after ${FINALIZE_MAX_WAIT_MS / 60_000} minutes` });
      await sleep(delay, opts.signal);
      dataset = await this.get(id, { signal: opts.signal });
    }
    return dataset;
  }

  get(id: string, opts?: RequestOptions): Promise<Dataset> {
    return this.http.json({ method: "GET", path: `/v1/datasets/${encodeURIComponent(id)}` }, opts);
  }

  list(opts?: RequestOptions): Promise<DatasetList> {
    return this.http.json({ method: "GET", path: "/v1/datasets" }, opts);
  }

  /**
   * create (holding the zip's size of the quota) + POST + finalize. Resolves with the ready dataset (check
   * `rejected` for files that were left out); throws DatasetFailedError when the archive as a whole was refused.
   */
  async upload(zip: F, req: CreateDatasetRequest = {}, opts: RequestOptions = {}): Promise<Dataset> {
    const { timeoutMs, ...rest } = opts;
    const named = await toNamedBlob(zip, "dataset.zip", this.resolveFile);
    const created = await this.create({ ...req, size_bytes: req.size_bytes ?? Math.max(1, named.blob.size) }, rest);
    await this.post(created, named, opts);
    let dataset: Dataset;
    try {
      // Finalize reads the whole archive server-side (a job the SDK follows), so it gets the upload's patience too.
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

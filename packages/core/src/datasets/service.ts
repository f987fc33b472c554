/**
 * Datasets in storage (storage/keys.ts's `datasetKeys`): `datasets/<id>/dataset.json` (the record),
 * `upload.zip` (what the client POSTed with the dataset's upload form; deleted once refused, or once finalize has indexed it, so a ready
 * dataset's bytes count once against the quota), `files/<key>` (every accepted image, written by
 * finalize) and `index.json` (the accepted entries, which trainers read). Nothing a client names ever becomes a key except through `safeKeyFor`.
 */
import { randomBytes } from "node:crypto";
import type { Dataset } from "../api/finetune.ts";
import { ApiError } from "../errors.ts";
import { mapLimited } from "../limits/map-limited.ts";
import { datasetKeys } from "../storage/keys.ts";
import type { Storage } from "../storage/storage.ts";
import { isDatasetError } from "./errors.ts";
import { inspectArchive, type AcceptedImage, type DatasetLayout } from "./inspect.ts";

export const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString("base64url").replace(/[-_]/g, "x")}`;

/** Stored record: the API shape plus the owner, and when the running finalize started (datasets/finalizer.ts). */
export type DatasetRecord = Dataset & { tenant: string; processing_since?: string };

export interface DatasetIndex {
  layout: DatasetLayout;
  entries: AcceptedImage[];
  classes?: string[];
}

export interface DatasetServiceOptions {
  /** Largest upload: the most an upload form accepts (and finalize re-checks it). */
  maxUploadBytes: number;
  /** How long an upload form stays valid (default 15 minutes): its quota hold lasts as long. */
  uploadExpirySeconds?: number;
}

export const DEFAULT_UPLOAD_EXPIRY_SECONDS = 15 * 60;

/** Records read at once when listing (each is a GET). */
const READ_CONCURRENCY = 8;

/** Codes of archive-level failures that mean "too big" rather than "malformed". */
const TOO_LARGE = new Set(["archive_too_large", "too_many_entries", "zip_bomb"]);

export class DatasetService {
  constructor(
    private readonly storage: Storage,
    private readonly opts: DatasetServiceOptions,
  ) {}

  private async save(record: DatasetRecord) {
    await this.storage.putJson(datasetKeys.record(record.id), record);
  }

  /** The record, or 404 when it does not exist or belongs to another tenant (never 403: no existence leak). */
  async get(id: string, tenant: string): Promise<DatasetRecord> {
    const record = /^ds_[A-Za-z0-9]+$/.test(id) ? await this.storage.getJson<DatasetRecord>(datasetKeys.record(id)) : undefined;
    if (!record || record.tenant !== tenant) throw new ApiError("not_found", `dataset '${id}' does not exist`);
    return record;
  }

  /** The record whoever owns it: for a finalize job, which is given only the id. */
  async load(id: string): Promise<DatasetRecord | undefined> {
    return /^ds_[A-Za-z0-9]+$/.test(id) ? this.storage.getJson<DatasetRecord>(datasetKeys.record(id)) : undefined;
  }

  /**
   * Finalize's synchronous part: 404 for a dataset that is not the tenant's, 409 when nothing was uploaded;
   * otherwise the dataset is `processing` until the finalize job records `ready` or `failed`. A ready dataset
   * comes back as it is; `started` is false for one whose finalize is already running (since `staleAfterMs` at
   * most: a job that died leaves it `processing`, and finalize may then start again).
   */
  async markProcessing(id: string, tenant: string, staleAfterMs: number): Promise<{ record: DatasetRecord; started: boolean }> {
    const record = await this.get(id, tenant);
    if (record.status === "ready") return { record, started: false };
    if (record.status === "processing" && Date.now() - Date.parse(record.processing_since ?? "") < staleAfterMs) return { record, started: false };
    if (!(await this.storage.head(datasetKeys.upload(id))))
      throw new ApiError("conflict", `nothing was uploaded for dataset '${id}': POST the zip with its upload form first`);
    const processing: DatasetRecord = { ...record, status: "processing", error: undefined, processing_since: new Date().toISOString() };
    await this.save(processing);
    return { record: processing, started: true };
  }

  /** Records an error finalize did not expect (storage unreachable, …): the zip stays, finalize may be called again. */
  async failUnexpectedly(id: string, message: string): Promise<void> {
    const record = await this.load(id);
    if (record?.status === "processing") await this.save({ ...record, status: "failed", processing_since: undefined, error: { code: "finalize_error", message } });
  }

  get maxUploadBytes(): number {
    return this.opts.maxUploadBytes;
  }

  /**
   * A dataset awaiting its zip, with S3's browser upload form for it: a presigned POST whose signed policy
   * fixes the key and the Content-Type and accepts at most `maxBytes` bytes (default and cap: maxUploadBytes).
   * Quotas go through `DatasetQuota.create`, which holds `maxBytes` of the tenant's quota for the form.
   */
  async create(req: { name?: string; layout: DatasetLayout | "auto" }, tenant: string, opts: { maxBytes?: number } = {}): Promise<DatasetRecord> {
    const id = newId("ds");
    const expires = this.opts.uploadExpirySeconds ?? DEFAULT_UPLOAD_EXPIRY_SECONDS;
    const maxBytes = Math.min(opts.maxBytes ?? this.opts.maxUploadBytes, this.opts.maxUploadBytes);
    const form = await this.storage.presignPost(datasetKeys.upload(id), { maxBytes, expiresInSeconds: expires, contentType: "application/zip" });
    const record: DatasetRecord = {
      id,
      name: req.name,
      layout: req.layout,
      status: "awaiting_upload",
      created_at: new Date().toISOString(),
      upload: {
        url: form.url,
        method: "POST",
        fields: form.fields,
        file_field: "file",
        max_bytes: maxBytes,
        expires_at: new Date(Date.now() + expires * 1000).toISOString(),
      },
      tenant,
    };
    // The tenant's index marker first, so no record is ever missing from its tenant's list.
    await this.storage.put(datasetKeys.tenantEntry(tenant, id), "");
    await this.save(record);
    return record;
  }

  /** The tenant's datasets, newest first: its index lists them, so only its own records are read. */
  async list(tenant: string): Promise<DatasetRecord[]> {
    const index = datasetKeys.tenantIndex(tenant);
    const ids = (await this.storage.list(index)).map((o) => o.key.slice(index.length));
    const records = await mapLimited(ids, READ_CONCURRENCY, (id) => this.load(id));
    return records.filter((r): r is DatasetRecord => r?.tenant === tenant).sort((a, b) => b.created_at.localeCompare(a.created_at));
  }

  /**
   * Validates and indexes the uploaded zip. Idempotent once ready. With `budget`, the indexed files may
   * total at most `maxFileBytes` (a zip can inflate far past its own size): past that, `overBudget`'s error
   * is thrown, the files written so far are removed and the dataset stays as it was.
   */
  async finalize(id: string, tenant: string, budget?: { maxFileBytes: number; overBudget: (bytes: number) => Error }): Promise<DatasetRecord> {
    const record = await this.get(id, tenant);
    if (record.status === "ready") return record;
    const head = await this.storage.head(datasetKeys.upload(id));
    if (!head) throw new ApiError("conflict", `nothing was uploaded for dataset '${id}': POST the zip with its upload form first`);
    if (head.size > this.opts.maxUploadBytes)
      return this.fail(record, "payload_too_large", `the upload is ${head.size} bytes; the limit is ${this.opts.maxUploadBytes}`);
    const zip = (await this.storage.get(datasetKeys.upload(id)))!;
    // Files from an earlier failed attempt must not mix with this one.
    await this.storage.deletePrefix(datasetKeys.files(id));
    let written = 0;
    try {
      const report = await inspectArchive(zip, {
        layout: record.layout,
        onImage: async (_path, _role, bytes, image) => {
          written += bytes.byteLength;
          if (budget && written > budget.maxFileBytes) throw budget.overBudget(written);
          await this.storage.put(datasetKeys.file(id, image.key), bytes);
        },
      });
      const index: DatasetIndex = { layout: report.layout, entries: report.entries, classes: report.stats.classes };
      await this.storage.putJson(datasetKeys.index(id), index);
      const s = report.stats;
      const ready: DatasetRecord = {
        ...record,
        processing_since: undefined,
        layout: report.layout,
        status: "ready",
        upload: undefined,
        error: undefined,
        stats: {
          images: s.acceptedCount,
          counts_by_folder: s.countsByFolder,
          total_bytes: s.totalBytes,
          resolutions: s.resolutions,
          classes: s.classes,
          max_label_value: s.maxLabelValue,
        },
        rejected: report.rejected,
      };
      await this.save(ready);
      // The files hold what training needs now. Best effort: a zip left behind is counted in the quota.
      await this.storage.delete(datasetKeys.upload(id)).catch(() => undefined);
      return ready;
    } catch (e) {
      await this.storage.deletePrefix(datasetKeys.files(id));
      if (isDatasetError(e)) return this.fail(record, TOO_LARGE.has(e.code) ? "payload_too_large" : "invalid_archive", e.message, e.code);
      throw e;
    }
  }

  /**
   * A failed finalize is recorded on the dataset (so GET shows why) and answered as a 4xx. The refused upload
   * is deleted and the form dropped from the record: a failed dataset holds nothing of the quota.
   */
  private async fail(record: DatasetRecord, code: "invalid_archive" | "payload_too_large", message: string, reason?: string, details: Record<string, unknown> = {}): Promise<never> {
    await this.storage.delete(datasetKeys.upload(record.id));
    await this.save({ ...record, status: "failed", upload: undefined, processing_since: undefined, error: { code: reason ?? code, message } });
    throw new ApiError(code, message, { ...details, dataset: record.id, reason: reason ?? code });
  }

  /** Refuses a dataset's upload for a reason found outside finalize (the tenant's quota): as a failed finalize. */
  async refuse(id: string, tenant: string, code: "payload_too_large", message: string, details: Record<string, unknown> & { reason: string }): Promise<never> {
    return this.fail(await this.get(id, tenant), code, message, details.reason, details);
  }

  async index(id: string): Promise<DatasetIndex> {
    const index = await this.storage.getJson<DatasetIndex>(datasetKeys.index(id));
    if (!index) throw new ApiError("conflict", `dataset '${id}' is not finalized`);
    return index;
  }

  fileKey(id: string, key: string) {
    return datasetKeys.file(id, key);
  }
}

/** The API view of a record (the owner stays internal). */
export const publicDataset = ({ tenant: _tenant, processing_since: _since, ...rest }: DatasetRecord): Dataset => rest;

import { decodeBase64, toBase64, toNamedBlob, type FileResolver } from "./files.ts";
import { HttpClient, type ClientOptions, type RequestOptions } from "./http.ts";
import { Datasets } from "./resources/datasets.ts";
import { FineTunes } from "./resources/fine-tunes.ts";
import { Models } from "./resources/models.ts";
import { asGenerateResponse, asTranslateResponse, Predictions, type CreatePredictionOptions, type PredictionWaitOptions } from "./resources/predictions.ts";
import {
  TRANSLATE_FILE_FIELDS,
  type GenerateRequest,
  type GenerateResponse,
  type ImageResult,
  type InterpolateRequest,
  type Prediction,
  type ProjectRequest,
  type ProjectResponse,
  type TranslateRequest,
  type TranslateResponse,
  type VideoRequest,
  type VideoResponse,
} from "./types.ts";

export interface GenerateFunction {
  /** Seeds → images (StyleGAN2). */
  (req: GenerateRequest, opts?: RequestOptions): Promise<GenerateResponse>;
  /** Frames from seed_a to seed_b, interpolated in w space. */
  interpolate(req: InterpolateRequest, opts?: RequestOptions): Promise<GenerateResponse>;
  /** Keyframes (seeds or w's) → an animated WebP or GIF; runs as a prediction and waits for it. */
  video(req: VideoRequest, opts?: RequestOptions): Promise<VideoResponse>;
}

/**
 * The client, generic over what counts as a file: `Ganserve` from the main entry takes bytes and streams,
 * the Node entry's also takes paths. Use `Ganserve` from either entry rather than this class.
 */
export class GanserveClient<F> {
  readonly models: Models;
  readonly datasets: Datasets<F>;
  readonly fineTunes: FineTunes;
  /** Predictions: any model run as a job that can be awaited, polled, streamed or canceled. */
  readonly predictions: Predictions;
  readonly generate: GenerateFunction;
  /** @internal */
  protected readonly http: HttpClient;
  readonly #resolveFile: FileResolver | undefined;

  /** @param resolveFile how an entry point turns its extra file forms (paths) into bytes. */
  constructor(opts: ClientOptions, resolveFile?: FileResolver) {
    this.http = new HttpClient(opts);
    this.#resolveFile = resolveFile;
    this.models = new Models(this.http);
    this.datasets = new Datasets<F>(this.http, resolveFile);
    this.fineTunes = new FineTunes(this.http);
    this.predictions = new Predictions(this.http);
    // The same request always gives the same bytes, so generate is safe to retry after a network error.
    // A 202 (not done within the server's wait) carries the prediction: followed to its end.
    const generate = async (req: GenerateRequest, o?: RequestOptions) =>
      this.predictions.settle(await this.http.json<GenerateResponse | Prediction>({ method: "POST", path: "/v1/generate", json: req, idempotent: true }, o), asGenerateResponse, o);
    this.generate = Object.assign(generate, {
      interpolate: (req: InterpolateRequest, o?: RequestOptions) => this.interpolate(req, o),
      // Deterministic like generate: the same keyframes give the same bytes, so a retry is safe.
      video: (req: VideoRequest, o?: RequestOptions) => this.http.json<VideoResponse>({ method: "POST", path: "/v1/generate/video", json: req, idempotent: true }, o),
    });
  }

  /**
   * Runs `model` on `input` (the body of generate or translate, without model) and returns the succeeded
   * prediction: waits with `Prefer: wait`, then polls through a cold start. See `predictions.run`.
   */
  run(model: string, input: Record<string, unknown>, opts?: CreatePredictionOptions & { version?: string } & PredictionWaitOptions) {
    return this.predictions.run(model, input, opts);
  }

  get baseUrl(): string {
    return this.http.baseUrl;
  }

  interpolate(req: InterpolateRequest, opts?: RequestOptions): Promise<GenerateResponse> {
    return this.http.json({ method: "POST", path: "/v1/generate/interpolate", json: req, idempotent: true }, opts);
  }

  /**
   * Image → image (CycleGAN: `image`) or label map → image (SPADE: `label_map`, optional `instance_map`
   * and `style_image`), sent as multipart so files travel as bytes rather than base64 JSON.
   */
  async translate(req: TranslateRequest<F>, opts?: RequestOptions): Promise<TranslateResponse> {
    const form = new FormData();
    for (const [key, value] of Object.entries(req)) {
      if (value === undefined || (TRANSLATE_FILE_FIELDS as readonly string[]).includes(key)) continue;
      form.set(key, String(value));
    }
    // Read once up front: a stream cannot be resent, and a retry must send the same bytes.
    for (const field of TRANSLATE_FILE_FIELDS) {
      const value = req[field];
      if (value === undefined) continue;
      const { blob, name } = await toNamedBlob(value, field, this.#resolveFile);
      form.set(field, blob, name);
    }
    const res = await this.http.json<TranslateResponse | Prediction>({ method: "POST", path: "/v1/translate", body: form, idempotent: true }, opts);
    return this.predictions.settle(res, asTranslateResponse, opts);
  }

  /**
   * Image → w: NVlabs projector.py's optimisation (runs as a prediction and waits). The result's `w` goes back
   * into `generate({ w: [w] })`; with `optimize_noise: false` that gives the projected image itself.
   */
  async project(req: ProjectRequest<F>, opts?: RequestOptions): Promise<ProjectResponse> {
    const { blob } = await toNamedBlob(req.image, "image", this.#resolveFile);
    const image = toBase64(new Uint8Array(await blob.arrayBuffer()));
    return this.http.json({ method: "POST", path: "/v1/generate/project", json: { ...req, image }, idempotent: true }, opts);
  }

  /** An image's bytes, inline or from its presigned URL (`output: "url"`; fetched without the API key). */
  async download(image: ImageResult, opts?: RequestOptions): Promise<Uint8Array> {
    if (image.data !== undefined) return decodeBase64(image.data);
    if (!image.url) throw new TypeError("image has neither data nor url");
    return this.http.send({ method: "GET", path: image.url, auth: false, headers: { Accept: "*/*" } }, opts ?? {}, async (res) =>
      new Uint8Array(await res.arrayBuffer()),
    );
  }
}

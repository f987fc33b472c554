/** Sends a dataset's zip the way a browser does: S3's upload form (presigned POST), the file part last. */
import type { Dataset } from "@ganserve/core/api/finetune";

export type UploadForm = NonNullable<Dataset["upload"]>;

/** POSTs `body` with the dataset's upload form; the store's answer (204 when stored). */
export async function postUpload(upload: UploadForm, body: Uint8Array | Blob, filename = "dataset.zip"): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(upload.fields)) form.append(k, v);
  form.append(upload.file_field, body instanceof Blob ? body : new Blob([body.slice()]), filename);
  return fetch(upload.url, { method: "POST", body: form });
}

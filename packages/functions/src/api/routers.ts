/** The /v1 routers, in one list so every entry point mounts the same API. */
import type { V1Mount } from "./app.ts";
import { generateRoutes } from "./routes/generate.ts";
import { modelRoutes } from "./routes/models.ts";
import { translateRoutes } from "./routes/translate.ts";
import { datasetRoutes } from "./routes/datasets.ts";
import { fineTuneRoutes } from "./routes/finetunes.ts";
import { predictionRoutes } from "./routes/predictions.ts";
import { directionRoutes } from "./routes/directions.ts";
import { latentRoutes } from "./routes/latents.ts";

export const v1Routers: V1Mount[] = [
  (v1, s) => v1.route("/", modelRoutes(s)),
  (v1, s) => v1.route("/", generateRoutes(s)),
  (v1, s) => v1.route("/", translateRoutes(s)),
  (v1, s) => v1.route("/", datasetRoutes(s)),
  (v1, s) => v1.route("/", fineTuneRoutes(s)),
  (v1, s) => v1.route("/", predictionRoutes(s)),
  (v1, s) => v1.route("/", directionRoutes(s)),
  (v1, s) => v1.route("/", latentRoutes(s)),
];

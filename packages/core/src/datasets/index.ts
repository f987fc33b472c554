export { buildDatasetZip, type DatasetFile } from "./build.ts";
export { ARCHIVE_ERROR_CODES, DatasetError, isDatasetError, REJECTION_CODES, type ArchiveErrorCode, type RejectionCode } from "./errors.ts";
export {
  DEFAULT_DATASET_LIMITS,
  inspectArchive,
  type AcceptedImage,
  type DatasetLayout,
  type DatasetLimits,
  type DatasetReport,
  type DatasetStats,
  type InspectOptions,
  type OnImage,
  type RejectedEntry,
} from "./inspect.ts";
export { safeKeyFor, type ImageFormat } from "./paths.ts";

/**
 * Archive-level failures are thrown as `DatasetError`; problems with single entries are not errors at all but
 * rows in `rejected`, so one bad file never costs the user the whole upload. Both carry codes that are part
 * of the API contract: clients branch on them, so never rename one.
 */
export const ARCHIVE_ERROR_CODES = [
  "invalid_options",
  "not_a_zip",
  "corrupt_archive",
  "empty_archive",
  "too_many_entries",
  "archive_too_large",
  "zip_bomb",
  "wrong_layout",
  "no_usable_images",
] as const;
export type ArchiveErrorCode = (typeof ARCHIVE_ERROR_CODES)[number];

export const REJECTION_CODES = [
  "path_traversal",
  "absolute_path",
  "invalid_name",
  "symlink",
  "not_regular_file",
  "ignored_junk",
  "not_an_image",
  "outside_layout",
  "duplicate_path",
  "encrypted",
  "unsupported_compression",
  "corrupt_entry",
  "format_mismatch",
  "undecodable_image",
  "animated_image",
  "image_too_large",
  "unmatched_stem",
  "label_not_indexed",
  "label_unsupported",
  "label_size_mismatch",
] as const;
export type RejectionCode = (typeof REJECTION_CODES)[number];

export class DatasetError extends Error {
  override name = "DatasetError";
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
    /** The entry that tripped the check, when one did (bombs, lying headers). */
    readonly path?: string,
  ) {
    super(message);
  }
}

export const isDatasetError = (e: unknown): e is DatasetError => e instanceof DatasetError;

import type { RejectionCode } from "./errors.ts";

export type ImageFormat = "png" | "jpeg" | "webp";

const EXTENSIONS: Record<string, ImageFormat> = { png: "png", jpg: "jpeg", jpeg: "jpeg", webp: "webp" };

/** OS droppings that users never meant to upload; they are reported so the user sees why counts differ. */
const JUNK_NAMES = new Set(["thumbs.db", "desktop.ini", "icon\r"]);

export type NameCheck = { ok: true; path: string } | { ok: false; code: RejectionCode; reason: string };

/**
 * Judges a name exactly as the zip's central directory spells it. Names are never "repaired" into something
 * safe and then used: anything that could address a location outside the dataset is refused outright,
 * because a rewritten name silently lands somewhere the user did not put it.
 */
export function checkEntryName(name: string, maxLength: number): NameCheck {
  // Windows zippers write backslashes; treating them as separators is what every extractor does too.
  const unified = name.replace(/\\/g, "/");
  if (unified.length === 0) return { ok: false, code: "invalid_name", reason: "empty file name" };
  if (unified.length > maxLength) return { ok: false, code: "invalid_name", reason: `name longer than ${maxLength} characters` };
  if (/\p{Cc}/u.test(unified)) return { ok: false, code: "invalid_name", reason: "control characters in file name" };
  if (unified.startsWith("/") || /^[A-Za-z]:/.test(unified))
    return { ok: false, code: "absolute_path", reason: "absolute path; entries must be relative to the archive root" };
  const segments = unified.split("/");
  if (segments.includes("..")) return { ok: false, code: "path_traversal", reason: "'..' path segment" };
  const kept = segments.filter((s) => s !== "" && s !== ".");
  if (kept.length === 0) return { ok: false, code: "invalid_name", reason: "name has no path segments" };
  return { ok: true, path: kept.join("/") + (unified.endsWith("/") ? "/" : "") };
}

/** Why a (normalised) path is OS junk, or null when it is not. */
export function junkReason(path: string): string | null {
  const segments = path.replace(/\/$/, "").split("/");
  if (segments.includes("__MACOSX")) return "macOS resource fork folder (__MACOSX/)";
  const base = segments[segments.length - 1];
  if (base === ".DS_Store") return "macOS folder metadata (.DS_Store)";
  if (base.startsWith("._")) return "macOS AppleDouble file (._*)";
  if (JUNK_NAMES.has(base.toLowerCase())) return `OS metadata file (${base})`;
  const hidden = segments.find((s) => s.startsWith("."));
  if (hidden !== undefined) return `hidden file or folder (${hidden})`;
  return null;
}

export function imageFormatFromPath(path: string): ImageFormat | null {
  const dot = path.lastIndexOf(".");
  if (dot < 0 || dot < path.lastIndexOf("/")) return null;
  return EXTENSIONS[path.slice(dot + 1).toLowerCase()] ?? null;
}

/** File name without folder and extension: what pairs a SPADE image with its label map. */
export function stemOf(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

const MAX_KEY_LENGTH = 900;
/** Longest segment (file or folder name) most filesystems hold; stores backed by one refuse longer ones. */
const MAX_SEGMENT_LENGTH = 255;

/** A segment over MAX_SEGMENT_LENGTH, cut in the middle so that its start and its extension stay. */
function shortenSegment(s: string): string {
  if (s.length <= MAX_SEGMENT_LENGTH) return s;
  const dot = s.lastIndexOf(".");
  const ext = dot > 0 && s.length - dot <= 16 ? s.slice(dot) : "";
  return s.slice(0, MAX_SEGMENT_LENGTH - ext.length) + ext;
}

/**
 * A storage key for a path from a user's archive, safe to append to the dataset's prefix whatever the path
 * holds: only [A-Za-z0-9._/-], no empty, "." or ".." segments, no ".." anywhere, no leading or trailing slash,
 * no segment over 255 characters (a 300-character file name once crashed the embedded store).
 * Distinct paths can map to the same key (accents are folded, other characters become "_"); inspectArchive
 * rejects the later one as a duplicate so stored objects never overwrite each other.
 */
export function safeKeyFor(path: string): string {
  const folded = path.normalize("NFKD").replace(/[\u0300-\u036f]/g, "");
  const segments = folded
    .replace(/\\/g, "/")
    .split("/")
    .map((s) => shortenSegment(s.replace(/[^A-Za-z0-9._-]/g, "_").replace(/\.{2,}/g, ".")))
    .filter((s) => s !== "" && s !== ".");
  let key = segments.join("/");
  if (key.length > MAX_KEY_LENGTH) key = key.slice(key.length - MAX_KEY_LENGTH).replace(/^[./]+/, "");
  return key === "" ? "_" : key;
}

// File-system helpers whose errors name the file (DatasetError with a code).
import { readFileSync, statSync, type Stats } from "node:fs";

import { DatasetError } from "./dataset.js";

function fsError(cause: unknown, path: string, what: string): DatasetError {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR")
    return new DatasetError("NOT_FOUND", path, `${what} not found`, { cause });
  return new DatasetError("UNREADABLE", path, `cannot read ${what}: ${(cause as Error).message}`, { cause });
}

/** The whole file; a missing or unreadable file gives a DatasetError naming it. */
export function readFileOrThrow(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw fsError(cause, path, what);
  }
}

export function statOrThrow(path: string, what: string): Stats {
  try {
    return statSync(path);
  } catch (cause) {
    throw fsError(cause, path, what);
  }
}

export function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

// Classes on the search page: the label of each indexed image (labels.npy, named by the index's
// class names) and the class of each query — the label of the same image when the query is one of
// the indexed files, else its folder's name when that is a class (ImageFolder layout:
// ROOT/<class>/<image>). With both, the page marks hits of the query's class and gives precision@k.
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

import { readNpy } from "../io/index.js";
import { INDEX_FILES, type IndexMeta } from "./store.js";

export interface IndexClasses {
  names: readonly string[];
  /** Class name of index row i. */
  ofRow(row: number): string | null;
  /** Class of a query image file, when it can be told. */
  ofQuery(path: string): string | null;
}

/**
 * The classes of an index, or null when it has no labels. `fallbackNames`: class names from the
 * indexed dataset itself, for indexes written before index.json kept them.
 */
export function indexClasses(
  dir: string,
  meta: IndexMeta,
  ids: readonly string[],
  fallbackNames: readonly string[] | null = null,
): IndexClasses | null {
  const path = join(dir, INDEX_FILES.labels);
  if (!existsSync(path)) return null;
  const tensor = readNpy(path);
  let labels: number[];
  try {
    labels = tensor.toArray();
  } finally {
    tensor.dispose();
  }
  if (labels.length !== ids.length) return null;
  // Folders: classes are the sorted sub-folder names, which the ids (file paths) still show.
  const fromFolders =
    meta.dataset.kind === "folder" ? [...new Set(ids.map((id) => basename(dirname(id))))].sort() : null;
  const names = meta.classNames ?? fallbackNames ?? fromFolders;
  if (names === null || names.length === 0) return null;
  const rowOfFile = new Map(ids.map((id, row) => [resolve(id), row]));
  const ofRow = (row: number): string | null => names[labels[row] ?? -1] ?? null;
  return {
    names,
    ofRow,
    ofQuery: (query) => {
      const row = rowOfFile.get(resolve(query));
      if (row !== undefined) return ofRow(row);
      const folder = basename(dirname(resolve(query)));
      return names.includes(folder) ? folder : null;
    },
  };
}

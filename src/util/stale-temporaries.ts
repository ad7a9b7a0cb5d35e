// What a killed writer leaves behind. A file written atomically goes to `<path>.tmp-<pid>[-<n>]`
// and is renamed over `<path>` when complete; a writer killed by SIGKILL (or a power cut) never
// renames or removes it. The next writer or reader of `<path>` removes such files whose process is
// gone. A file of a live process is left alone: it may be writing right now.
import { readdirSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

const TEMPORARY = /^\.tmp-(\d+)(?:-\d+)?$/;

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes `path`'s temporary files left by writers that no longer run; returns their paths. */
export function removeStaleTemporaries(path: string): string[] {
  const dir = dirname(path);
  const name = basename(path);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return []; // no folder yet: nothing was left in it
  }
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.startsWith(name)) continue;
    const match = TEMPORARY.exec(entry.slice(name.length));
    if (match === null || isAlive(Number(match[1]))) continue;
    const stale = join(dir, entry);
    rmSync(stale, { force: true });
    removed.push(stale);
  }
  return removed;
}

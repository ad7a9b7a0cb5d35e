// Progress of a long job (pretraining, linear evaluation): a live status line on a terminal, plain
// log lines otherwise.

export interface ProgressState {
  epoch: number;
  epochs: number;
  stepInEpoch: number;
  stepsPerEpoch: number;
  loss: number;
  top1: number;
  /** What `top1` measures, shown before it (default "pretext@1", pretraining's). */
  accuracyLabel?: string;
  lr: number;
  imagesPerSec: number;
  /** Seconds left for the whole run. */
  etaSeconds: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : m > 0 ? `${m}m${String(rest).padStart(2, "0")}s` : `${rest}s`;
}

export function formatProgress(p: ProgressState): string {
  return (
    `epoch ${p.epoch + 1}/${p.epochs} step ${p.stepInEpoch}/${p.stepsPerEpoch} ` +
    `loss ${p.loss.toFixed(4)} ${p.accuracyLabel ?? "pretext@1"} ${p.top1.toFixed(1)}% lr ${p.lr.toPrecision(3)} ` +
    `${p.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(p.etaSeconds)}`
  );
}

export interface ProgressReporter {
  update(state: ProgressState): void;
  /** A line that stays (epoch summaries, kNN results, warnings). */
  log(line: string): void;
  done(): void;
}

/** A status line rewritten in place on a terminal; lines every `every` steps elsewhere. */
export function progressReporter(stream: NodeJS.WriteStream, every: number): ProgressReporter {
  const tty = stream.isTTY === true;
  let live = false;
  const clear = () => {
    if (live) stream.write("\r\x1b[2K");
    live = false;
  };
  return {
    update(state) {
      if (tty) {
        const line = formatProgress(state);
        stream.write(`\r\x1b[2K${line.slice(0, Math.max(20, (stream.columns ?? 120) - 1))}`);
        live = true;
      } else if (state.stepInEpoch % every === 0 || state.stepInEpoch === state.stepsPerEpoch) {
        stream.write(formatProgress(state) + "\n");
      }
    },
    log(line) {
      clear();
      stream.write(line + "\n");
    },
    done() {
      clear();
    },
  };
}

/** Discards everything: for library use and tests. */
export const silentProgress: ProgressReporter = { update() {}, log() {}, done() {} };

// One rank of the collectives tests (dist-collectives.test.ts); prints one JSON line, its findings.
import { initDistributed } from "../../src/dist/index.js";
import { arange, liveTensors, setNumThreads, type DType, type Tensor } from "../../src/torch/index.js";

setNumThreads(1);
const scenario = process.argv[2];
const timeoutMs = Number(process.argv[3] ?? 20_000);

function values(t: Tensor): number[] {
  return t.toArray();
}

async function collectives(): Promise<unknown> {
  const { group } = await initDistributed({ timeoutMs });
  const r = group.rank;
  const cases: Record<string, unknown>[] = [];
  const shapes: number[][] = [[], [5], [3, 4], [2, 3, 4], [1000, 37]];
  const dtypes: DType[] = ["float32", "float64", "int64"];
  for (const dtype of dtypes) {
    for (const shape of shapes) {
      const n = shape.reduce((a, b) => a * b, 1);
      // Rank r holds (i + 1) * (r + 1) at flat index i.
      const make = () =>
        arange(1, n + 1, 1, { dtype })
          .mul(r + 1)
          .reshape(shape);
      const sum = make();
      group.allReduce(sum, "sum");
      const max = make();
      group.allReduce(max, "max");
      const gathered = group.allGather(make());
      const bcast = make();
      group.broadcast(bcast, 1);
      const entry: Record<string, unknown> = {
        dtype,
        shape,
        sum: values(sum),
        max: values(max),
        gathered: gathered.map(values),
        gatheredShapes: gathered.map((g) => g.shape),
        gatheredDtypes: gathered.map((g) => g.dtype),
        broadcast: values(bcast),
        sumDtype: sum.dtype,
      };
      if (dtype !== "int64") {
        const avg = make();
        group.allReduce(avg, "avg");
        entry["avg"] = values(avg);
      }
      cases.push(entry);
    }
  }
  // A non-contiguous view is reduced in place, through a contiguous copy.
  const base = arange(0, 6, 1, { dtype: "float32" })
    .reshape([2, 3])
    .add(r * 10);
  const view = base.t();
  group.allReduce(view, "sum");
  const nonContiguous = values(base);
  group.barrier();
  let avgIntError = "";
  try {
    group.allReduce(arange(0, 3, 1, { dtype: "int64" }), "avg");
  } catch (error) {
    avgIntError = (error as Error).message;
  }
  group.dispose();
  group.dispose();
  let disposedError = "";
  try {
    group.barrier();
  } catch (error) {
    disposedError = (error as Error).message;
  }
  return { rank: r, cases, nonContiguous, avgIntError, disposedError, live: liveTensors() };
}

/** Rank 1 never joins the collective (it sleeps, then exits): rank 0 must time out. */
async function hang(): Promise<unknown> {
  // A long rendezvous (the two processes may start seconds apart), a short collective.
  const { group } = await initDistributed({ timeoutMs: 60_000 });
  if (group.rank === 1) {
    await new Promise((resolve) => setTimeout(resolve, timeoutMs * 3));
    return { rank: 1 };
  }
  const started = Date.now();
  let error = "";
  try {
    group.allReduce(arange(0, 4, 1, { dtype: "float32" }), "sum", { timeoutMs });
  } catch (e) {
    error = (e as Error).message;
  }
  const seconds = (Date.now() - started) / 1000;
  let again = "";
  try {
    group.barrier();
  } catch (e) {
    again = (e as Error).message;
  }
  group.dispose();
  return { rank: 0, error, seconds, again };
}

/** Rank 1 exits right after the rendezvous: rank 0's next collective must fail, not hang. */
async function peerDies(): Promise<unknown> {
  const { group } = await initDistributed({ timeoutMs });
  if (group.rank === 1) process.exit(3);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = Date.now();
  let error = "";
  try {
    group.allReduce(arange(0, 4, 1, { dtype: "float32" }), "sum");
  } catch (e) {
    error = (e as Error).message;
  }
  group.dispose();
  return { rank: 0, error, seconds: (Date.now() - started) / 1000 };
}

/** Only rank 0 starts: the rendezvous must fail after the timeout, while timers keep running. */
async function alone(): Promise<unknown> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 100);
  const started = Date.now();
  let error = "";
  try {
    await initDistributed({ timeoutMs });
  } catch (e) {
    error = (e as Error).message;
  }
  clearInterval(timer);
  return { error, ticks, seconds: (Date.now() - started) / 1000 };
}

const scenarios: Record<string, () => Promise<unknown>> = { collectives, hang, peerDies, alone };
const run = scenario === undefined ? undefined : scenarios[scenario];
if (run === undefined) throw new Error(`unknown scenario ${String(scenario)}`);
console.log(JSON.stringify(await run()));

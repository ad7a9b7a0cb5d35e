// c10d collectives between two Node processes on 127.0.0.1 (Gloo over a TCPStore): numbers,
// dtypes and shapes; timeouts and dead peers as errors; argument checks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DistEnvError, ProcessGroup, readDistEnv } from "../src/dist/index.js";
import { report, spawnRanks } from "./helpers/dist.js";

interface Case {
  dtype: string;
  shape: number[];
  sum: number[];
  max: number[];
  avg?: number[];
  gathered: number[][];
  gatheredShapes: number[][];
  gatheredDtypes: string[];
  broadcast: number[];
  sumDtype: string;
}

describe("collectives, 2 processes", () => {
  it("all-reduce (sum, avg, max), all-gather, broadcast and barrier give the right numbers", async () => {
    const results = await spawnRanks("dist-collectives.ts", ["collectives"], { worldSize: 2 });
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const reports = results.map((r) =>
      report<{ rank: number; cases: Case[]; nonContiguous: number[]; avgIntError: string; disposedError: string }>(r),
    );
    for (const rep of reports) {
      assert.equal(rep.cases.length, 15);
      for (const c of rep.cases) {
        const n = c.shape.reduce((a, b) => a * b, 1);
        const base = Array.from({ length: n }, (_, i) => i + 1);
        const label = `${c.dtype} [${c.shape.join(",")}] on rank ${rep.rank}`;
        assert.deepEqual(
          c.sum,
          base.map((v) => v * 3),
          `sum, ${label}`,
        );
        assert.equal(c.sumDtype, c.dtype, label);
        assert.deepEqual(
          c.max,
          base.map((v) => v * 2),
          `max, ${label}`,
        );
        if (c.dtype !== "int64")
          assert.deepEqual(
            c.avg,
            base.map((v) => v * 1.5),
            `avg, ${label}`,
          );
        assert.deepEqual(c.gathered, [base, base.map((v) => v * 2)], `allGather, ${label}`);
        assert.deepEqual(c.gatheredShapes, [c.shape, c.shape], label);
        assert.deepEqual(c.gatheredDtypes, [c.dtype, c.dtype], label);
        assert.deepEqual(
          c.broadcast,
          base.map((v) => v * 2),
          `broadcast from rank 1, ${label}`,
        );
      }
      // base = [[0,1,2],[3,4,5]] + 10·rank, reduced through its transposed (non-contiguous) view.
      assert.deepEqual(rep.nonContiguous, [10, 12, 14, 16, 18, 20]);
      assert.match(rep.avgIntError, /avg needs a floating-point tensor, got int64/);
      assert.match(rep.disposedError, /process group has been disposed/);
    }
  });

  it("a rank that never joins makes the collective fail after the timeout, and the group unusable", async () => {
    const results = await spawnRanks("dist-collectives.ts", ["hang", "1500"], { worldSize: 2 });
    const rank0 = results[0];
    assert.ok(rank0 !== undefined);
    assert.equal(rank0.code, 0, rank0.stderr);
    const rep = report<{ error: string; seconds: number; again: string }>(rank0);
    assert.match(rep.error, /^distAllReduce: no answer from the other ranks within 1500 ms \(rank 0 of 2\)/);
    assert.ok(rep.seconds >= 1.4 && rep.seconds < 5, `timed out after ${rep.seconds} s`);
    assert.match(rep.again, /process group is unusable: an earlier collective failed or timed out/);
  });

  it("a peer that exits makes the next collective fail at once instead of hanging", async () => {
    const results = await spawnRanks("dist-collectives.ts", ["peerDies", "20000"], { worldSize: 2 });
    const rank0 = results[0];
    assert.ok(rank0 !== undefined);
    assert.equal(rank0.code, 0, rank0.stderr);
    assert.equal(results[1]?.code, 3);
    const rep = report<{ error: string; seconds: number }>(rank0);
    assert.match(rep.error, /^distAllReduce: collective failed \(rank 0 of 2\): .*(closed|reset|peer)/i);
    assert.ok(rep.seconds < 10, `failed after ${rep.seconds} s`);
  });

  it("a rendezvous with a missing rank fails after the timeout, without blocking the event loop", async () => {
    const results = await spawnRanks("dist-collectives.ts", ["alone", "1500"], { worldSize: 2, ranks: [0] });
    const rank0 = results[0];
    assert.ok(rank0 !== undefined);
    assert.equal(rank0.code, 0, rank0.stderr);
    const rep = report<{ error: string; ticks: number; seconds: number }>(rank0);
    assert.match(rep.error, /^distInit: rank 0 of 2 could not meet the other ranks at 127\.0\.0\.1:\d+ within 1500 ms/);
    assert.ok(rep.ticks >= 10, `only ${rep.ticks} timer ticks while waiting`);
  });
});

describe("env:// and argument checks", () => {
  const good = { MASTER_ADDR: "10.0.0.1", MASTER_PORT: "29500", RANK: "1", WORLD_SIZE: "4", LOCAL_RANK: "1" };

  it("reads the env:// variables", () => {
    assert.deepEqual(readDistEnv(good), {
      masterAddr: "10.0.0.1",
      masterPort: 29500,
      rank: 1,
      worldSize: 4,
      localRank: 1,
      localWorldSize: null,
      socketInterface: null,
    });
    assert.equal(readDistEnv({ ...good, LOCAL_RANK: undefined }).localRank, 0);
  });

  it("names the missing or invalid variable", () => {
    const cases: [Record<string, string | undefined>, RegExp][] = [
      [{ ...good, MASTER_ADDR: undefined }, /MASTER_ADDR is not set/],
      [{ ...good, MASTER_PORT: undefined }, /MASTER_PORT is not set/],
      [{ ...good, MASTER_PORT: "http" }, /MASTER_PORT must be an integer in \[1, 65535\], got 'http'/],
      [{ ...good, MASTER_PORT: "70000" }, /MASTER_PORT must be an integer/],
      [{ ...good, RANK: undefined }, /RANK is not set/],
      [{ ...good, RANK: "4" }, /RANK must be an integer in \[0, 3\], got '4'/],
      [{ ...good, RANK: "-1" }, /RANK must be an integer/],
      [{ ...good, WORLD_SIZE: "0" }, /WORLD_SIZE must be an integer in \[1, 65536\], got '0'/],
      [{ ...good, WORLD_SIZE: "2.5" }, /WORLD_SIZE must be an integer/],
      [{ ...good, LOCAL_RANK: "x" }, /LOCAL_RANK must be an integer/],
    ];
    for (const [env, message] of cases)
      assert.throws(
        () => readDistEnv(env),
        (e: Error) => e instanceof DistEnvError && message.test(e.message),
      );
  });

  it("ProcessGroup.create checks its options before connecting", async () => {
    const base = { masterAddr: "127.0.0.1", masterPort: 29500, rank: 0, worldSize: 2 };
    await assert.rejects(ProcessGroup.create({ ...base, rank: 2 }), /rank must be an integer in \[0, 1\], got 2/);
    await assert.rejects(
      ProcessGroup.create({ ...base, masterPort: 0 }),
      /masterPort must be an integer in \[1, 65535\]/,
    );
    await assert.rejects(ProcessGroup.create({ ...base, masterAddr: "" }), /masterAddr must be a non-empty/);
    await assert.rejects(ProcessGroup.create({ ...base, timeoutMs: 0 }), /timeoutMs must be an integer >= 1/);
    await assert.rejects(
      ProcessGroup.create({ ...base, backend: "mpi" as "gloo" }),
      /backend 'mpi' is not available in this build/,
    );
    assert.ok(ProcessGroup.backends().includes("gloo"));
  });
});

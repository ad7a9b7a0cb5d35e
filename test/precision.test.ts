// The precision decision (src/train/precision.ts): bf16 autocast only where the CPU computes bf16
// natively, channels-last with AVX-512, explicit settings kept, and a reason for the run header.
// CPUs are injected, parsed from /proc/cpuinfo text as the kernel writes it.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { MocoError } from "../src/errors.js";
import {
  PrecisionError,
  parseCpuInfo,
  readCpuCapabilities,
  resolvePrecision,
  type CpuCapabilities,
} from "../src/torch/precision.js";

const cpuinfo = (model: string, flags: string) =>
  `processor\t: 0\nvendor_id\t: X\nmodel name\t: ${model}\nflags\t\t: ${flags}\n\nprocessor\t: 1\nmodel name\t: ${model}\nflags\t\t: ${flags}\n`;

const ZEN5 = parseCpuInfo(cpuinfo("AMD EPYC 9R45", "fpu sse avx2 avx512f avx512bw avx512_bf16 avx512_vnni"));
const SAPPHIRE = parseCpuInfo(cpuinfo("Intel Xeon Platinum 8488C", "avx2 avx512f amx_bf16 amx_tile amx_int8"));
const SKYLAKE = parseCpuInfo(cpuinfo("Intel Xeon Platinum 8175M", "fpu sse avx2 avx512f avx512bw avx512_vnni"));
const HASWELL = parseCpuInfo(cpuinfo("Intel Xeon E5-2676 v3", "fpu sse sse4_2 avx avx2 fma"));
const UNKNOWN: CpuCapabilities = { model: null, flags: new Set() };

describe("resolvePrecision", () => {
  test("auto on a CPU without native bf16 chooses float32 and says why", () => {
    const r = resolvePrecision({ precision: "auto", channelsLast: "auto" }, SKYLAKE);
    assert.equal(r.dtype, "float32");
    assert.equal(r.channelsLast, true);
    assert.match(
      r.reason,
      /float32, because Intel Xeon Platinum 8175M has no native bf16 \(no avx512_bf16 or amx_bf16\)/,
    );
    const old = resolvePrecision({ precision: "auto", channelsLast: "auto" }, HASWELL);
    assert.deepEqual([old.dtype, old.channelsLast], ["float32", false]);
    assert.match(old.reason, /NCHW/);
    const unknown = resolvePrecision({ precision: "auto", channelsLast: "auto" }, UNKNOWN);
    assert.match(unknown.reason, /float32, because this CPU has no native bf16/);
  });

  test("auto with avx512_bf16 or AMX chooses bf16 autocast and channels-last", () => {
    const zen = resolvePrecision({ precision: "auto", channelsLast: "auto" }, ZEN5);
    assert.deepEqual([zen.dtype, zen.channelsLast], ["bfloat16", true]);
    assert.match(zen.reason, /bfloat16 autocast, because AMD EPYC 9R45 computes bf16 natively \(avx512_bf16\)/);
    assert.match(zen.reason, /channels-last/);
    const amx = resolvePrecision({ precision: "auto", channelsLast: "auto" }, SAPPHIRE);
    assert.equal(amx.dtype, "bfloat16");
    assert.match(amx.reason, /amx_bf16/);
  });

  test("explicit settings are kept; bf16 without native support is allowed with a warning in the reason", () => {
    const fp32 = resolvePrecision({ precision: "fp32", channelsLast: "off" }, ZEN5);
    assert.deepEqual([fp32.dtype, fp32.channelsLast], ["float32", false]);
    assert.match(fp32.reason, /float32 \(as asked\); layout: NCHW \(as asked\)/);
    const forced = resolvePrecision({ precision: "bf16", channelsLast: "on" }, HASWELL);
    assert.deepEqual([forced.dtype, forced.channelsLast], ["bfloat16", true]);
    assert.match(forced.reason, /expect it slower than float32/);
  });

  test("invalid settings are PrecisionErrors", () => {
    assert.throws(
      () => resolvePrecision({ precision: "fp16" as "bf16", channelsLast: "auto" }, ZEN5),
      (e) =>
        e instanceof PrecisionError && e instanceof MocoError && e.code === "ERR_PRECISION" && /fp16/.test(e.message),
    );
    assert.throws(
      () => resolvePrecision({ precision: "auto", channelsLast: "yes" as "on" }, ZEN5),
      /channelsLast must be/,
    );
  });

  test("this machine's /proc/cpuinfo is read (and a missing file means no flags)", () => {
    const here = readCpuCapabilities();
    let text = "";
    try {
      text = readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      // not Linux: nothing to compare
    }
    assert.equal(here.flags.has("avx512_bf16"), /\bavx512_bf16\b/.test(text));
    const missing = readCpuCapabilities("/nonexistent/cpuinfo");
    assert.deepEqual([missing.model, missing.flags.size], [null, 0]);
  });
});

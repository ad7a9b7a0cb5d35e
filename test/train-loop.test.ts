// The one training loop (src/train/loop.ts) on a small real regression: the order of hook events,
// stopping by signal and by step budget, exact continuation from a state dict, the non-finite guard,
// and no tensor left behind.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Random, type RandomState } from "../src/data/random.js";
import { Linear } from "../src/nn/index.js";
import { SGD } from "../src/optim/index.js";
import { F, keep, liveTensors, manualSeed, randn, scope, type Tensor } from "../src/torch/index.js";
import { NonFiniteLossError, checkpointHook, lrScheduleHook, nonFiniteLossGuard } from "../src/loop/index.js";
import {
  TrainingState,
  disposeStateDict,
  runLoop,
  type LoopHooks,
  type LoopPosition,
  type TrainingStateDict,
} from "../src/loop/index.js";

const STEPS_PER_EPOCH = 3;
const BATCH = 4;

interface Fixture {
  x: Tensor;
  y: Tensor;
  dispose(): void;
}

function fixture(): Fixture {
  manualSeed(11);
  const x = randn([STEPS_PER_EPOCH * BATCH, 4]);
  const y = x.mm(randn([4, 1])).add(1);
  return {
    x,
    y,
    dispose() {
      x.dispose();
      y.dispose();
    },
  };
}

interface TestBatch {
  step: number;
  x: Tensor;
  y: Tensor;
  dispose(): void;
}

/** The batches of an epoch in an order drawn from (7, epoch), as the DataLoader does. */
function batches(data: Fixture) {
  return async function* (epoch: number, startStep: number): AsyncGenerator<TestBatch> {
    const order = new Random(7, epoch).permutation(STEPS_PER_EPOCH);
    for (let step = startStep; step < STEPS_PER_EPOCH; step++) {
      const start = (order[step] as number) * BATCH;
      const x = data.x.narrow(0, start, BATCH);
      const y = data.y.narrow(0, start, BATCH);
      yield {
        step,
        x,
        y,
        dispose() {
          x.dispose();
          y.dispose();
        },
      };
    }
  };
}

/**
 * A model, its optimizer and a noise stream in a TrainingState; the step draws from both libtorch's
 * generator and the stream, so a continuation is exact only when the state restores both.
 */
function setup(seed: number) {
  manualSeed(seed);
  const model = new Linear(4, 1);
  const optimizer = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const noise = new Random(seed, 99);
  const state = new TrainingState<RandomState>(model, optimizer, { noise });
  const step = (batch: TestBatch): { loss: number } => {
    const jitter = randn([BATCH, 1]).mul(0.01 + noise.random() * 0.01);
    const loss = F.mseLoss(model.forward(batch.x.add(0)), batch.y.add(jitter));
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return { loss: loss.item() };
  };
  const weights = () =>
    scope(() => [...model.getParameter("weight").toArray(), ...model.getParameter("bias").toArray()]);
  const dispose = () => {
    optimizer.dispose();
    model.dispose();
  };
  return { model, optimizer, noise, state, step, weights, dispose };
}

/** A state dict whose tensors are copies (the live ones keep training). */
function snapshot(state: TrainingState<RandomState>): TrainingStateDict<RandomState> {
  const dict = state.stateDict();
  const copy = scope(() => ({
    ...dict,
    model: new Map([...dict.model].map(([k, t]) => [k, keep(t.clone())])),
    optimizer: {
      ...dict.optimizer,
      state: new Map(
        [...dict.optimizer.state].map(([k, s]) => [
          k,
          { momentum_buffer: s.momentum_buffer === null ? null : keep(s.momentum_buffer.clone()) },
        ]),
      ),
    },
    torchRng: dict.torchRng === null ? null : keep(dict.torchRng.clone()),
  }));
  disposeStateDict(dict);
  return copy;
}

function disposeSnapshot(dict: TrainingStateDict<RandomState>): void {
  disposeStateDict(dict);
  for (const s of dict.optimizer.state.values()) s.momentum_buffer?.dispose();
}

test("hooks see the events in order, with the position before and after each step", async () => {
  const data = fixture();
  const run = setup(1);
  const events: string[] = [];
  const at = (p: LoopPosition) => `${p.epoch}/${p.epochStep}/${p.step}`;
  const recorder: LoopHooks<{ loss: number }> = {
    started: (p) => void events.push(`started ${at(p)}`),
    epochStarted: (e) => void events.push(`epochStarted ${e}`),
    iterationStarted: (p) => void events.push(`iterationStarted ${at(p)}`),
    iterationCompleted: (p, out) => {
      assert.ok(Number.isFinite(out.loss));
      events.push(`iterationCompleted ${at(p)}`);
    },
    epochCompleted: (p) => void events.push(`epochCompleted ${at(p)}`),
    stopped: (p, reason) => void events.push(`stopped ${at(p)} ${reason}`),
    completed: (o) => void events.push(`completed ${at(o.position)} ${o.stoppedBy}`),
  };
  const outcome = await runLoop({
    state: run.state,
    epochs: 2,
    batches: batches(data),
    step: run.step,
    hooks: [recorder],
  });
  const expected = ["started 0/0/0"];
  for (let epoch = 0; epoch < 2; epoch++) {
    expected.push(`epochStarted ${epoch}`);
    for (let s = 0; s < STEPS_PER_EPOCH; s++) {
      const before = epoch * STEPS_PER_EPOCH + s;
      expected.push(`iterationStarted ${epoch}/${s}/${before}`, `iterationCompleted ${epoch}/${s + 1}/${before + 1}`);
    }
    expected.push(`epochCompleted ${epoch + 1}/0/${(epoch + 1) * STEPS_PER_EPOCH}`);
  }
  expected.push("completed 2/0/6 null");
  assert.deepEqual(events, expected);
  assert.deepEqual(outcome, { interrupted: false, stoppedBy: null, position: { epoch: 2, epochStep: 0, step: 6 } });
  run.dispose();
  data.dispose();
});

test("the lr hook sets each epoch's lr before its first step", async () => {
  const data = fixture();
  const run = setup(1);
  const seen: number[] = [];
  await runLoop({
    state: run.state,
    epochs: 3,
    batches: batches(data),
    step: run.step,
    hooks: [
      lrScheduleHook(run.optimizer, (epoch) => 0.1 / (epoch + 1), { perStep: false, stepsPerEpoch: STEPS_PER_EPOCH }),
      { iterationCompleted: () => void seen.push(run.optimizer.paramGroups[0]?.lr ?? NaN) },
    ],
  });
  assert.deepEqual(seen, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.1 / 3, 0.1 / 3, 0.1 / 3]);
  run.dispose();
  data.dispose();
});

test("a run stopped by its signal saves a state from which the resumed run ends exactly as an uninterrupted one", async () => {
  const data = fixture();
  const before = liveTensors();

  const reference = setup(1);
  await runLoop({ state: reference.state, epochs: 2, batches: batches(data), step: reference.step, hooks: [] });
  const expected = reference.weights();
  reference.dispose();

  const first = setup(1);
  const controller = new AbortController();
  let saved: TrainingStateDict<RandomState> | null = null;
  const saves: LoopPosition[] = [];
  const outcome = await runLoop({
    state: first.state,
    epochs: 2,
    batches: batches(data),
    step: first.step,
    signal: controller.signal,
    hooks: [
      // Ctrl-C during the fourth step: the loop stops before the fifth.
      { iterationCompleted: (p) => (p.step === 4 ? controller.abort() : undefined) },
      checkpointHook((position) => {
        saves.push(position);
        if (saved !== null) disposeSnapshot(saved);
        saved = snapshot(first.state);
      }),
    ],
  });
  first.dispose();
  assert.deepEqual(outcome, { interrupted: true, stoppedBy: "signal", position: { epoch: 1, epochStep: 1, step: 4 } });
  // One save at the end of epoch 1, one at the stop.
  assert.deepEqual(saves, [
    { epoch: 1, epochStep: 0, step: 3 },
    { epoch: 1, epochStep: 1, step: 4 },
  ]);
  assert.ok(saved !== null);
  const state = saved as TrainingStateDict<RandomState>;

  // A different initialisation and a different stream position: the state dict overrides both.
  const resumed = setup(5);
  resumed.state.loadStateDict(state);
  disposeSnapshot(state);
  assert.deepEqual(resumed.state.position, { epoch: 1, epochStep: 1, step: 4 });
  const rest = await runLoop({
    state: resumed.state,
    epochs: 2,
    batches: batches(data),
    step: resumed.step,
    hooks: [],
  });
  assert.deepEqual(rest.position, { epoch: 2, epochStep: 0, step: 6 });
  assert.deepEqual(resumed.weights(), expected);
  resumed.dispose();
  assert.equal(liveTensors(), before);
  data.dispose();
});

test("a state dict round trip continues identically, and only with every random stream restored", async () => {
  const data = fixture();
  const a = setup(2);
  await runLoop({ state: a.state, epochs: 2, maxSteps: 2, batches: batches(data), step: a.step, hooks: [] });
  const dict = snapshot(a.state);
  await runLoop({ state: a.state, epochs: 2, batches: batches(data), step: a.step, hooks: [] });
  const continued = a.weights();
  a.dispose();

  const b = setup(3);
  b.state.loadStateDict(dict);
  await runLoop({ state: b.state, epochs: 2, batches: batches(data), step: b.step, hooks: [] });
  assert.deepEqual(b.weights(), continued);
  b.dispose();

  // Without its noise stream the same state continues differently: the comparison above can fail.
  const c = setup(3);
  c.state.loadStateDict({ ...dict, streams: {} });
  await runLoop({ state: c.state, epochs: 2, batches: batches(data), step: c.step, hooks: [] });
  assert.notDeepEqual(c.weights(), continued);
  c.dispose();
  disposeSnapshot(dict);
  data.dispose();
});

test("a step budget stops inside an epoch (stopped, then completed) or at its end (no stop event)", async () => {
  const data = fixture();
  for (const [maxSteps, expected] of [
    [4, ["epochCompleted 3", "stopped 4 steps", "completed steps"]],
    [3, ["epochCompleted 3", "completed steps"]],
  ] as const) {
    const run = setup(1);
    const events: string[] = [];
    const outcome = await runLoop({
      state: run.state,
      epochs: 3,
      maxSteps,
      batches: batches(data),
      step: run.step,
      hooks: [
        {
          epochCompleted: (p) => void events.push(`epochCompleted ${p.step}`),
          stopped: (p, reason) => void events.push(`stopped ${p.step} ${reason}`),
          completed: (o) => void events.push(`completed ${o.stoppedBy}`),
        },
      ],
    });
    assert.deepEqual(events, expected);
    assert.equal(outcome.position.step, maxSteps);
    assert.equal(outcome.interrupted, false);
    run.dispose();
  }
  data.dispose();
});

test("the non-finite guard stops the run before later hooks see the step", async () => {
  const data = fixture();
  const run = setup(1);
  const recorded: number[] = [];
  let calls = 0;
  await assert.rejects(
    runLoop({
      state: run.state,
      epochs: 2,
      batches: batches(data),
      step: (batch) => {
        calls++;
        return calls === 2 ? { loss: NaN } : run.step(batch);
      },
      hooks: [
        nonFiniteLossGuard<{ loss: number }>(
          (o) => o.loss,
          (value, p) => `loss ${value} at step ${p.step}`,
        ),
        { iterationCompleted: (p) => void recorded.push(p.step) },
      ],
    }),
    (error: unknown) => {
      assert.ok(error instanceof NonFiniteLossError);
      assert.equal(error.code, "ERR_NON_FINITE_LOSS");
      assert.equal(error.message, "loss NaN at step 2");
      return true;
    },
  );
  assert.deepEqual(recorded, [1]);
  run.dispose();
  data.dispose();
});

test('with stopBetween "epochs" the signal lets the running epoch finish and stops before the next', async () => {
  const data = fixture();
  const run = setup(1);
  const controller = new AbortController();
  const events: string[] = [];
  const outcome = await runLoop({
    state: run.state,
    epochs: 3,
    batches: batches(data),
    step: run.step,
    signal: controller.signal,
    stopBetween: "epochs",
    hooks: [
      {
        iterationCompleted: (p) => (p.step === 2 ? controller.abort() : undefined),
        epochCompleted: (p) => void events.push(`epochCompleted ${p.epoch}/${p.step}`),
        stopped: (p, reason) => void events.push(`stopped ${p.epoch}/${p.epochStep}/${p.step} ${reason}`),
      },
    ],
  });
  assert.deepEqual(events, ["epochCompleted 1/3", "stopped 1/0/3 signal"]);
  assert.deepEqual(outcome, { interrupted: true, stoppedBy: "signal", position: { epoch: 1, epochStep: 0, step: 3 } });
  run.dispose();
  data.dispose();
});

// MoCo v1/v2 as a module: the forward pass follows Algorithm 1 of He et al. 2019 (arXiv 1911.05722),
// with v2's MLP head (Chen et al. 2020, arXiv 2003.04297). It returns logits and labels; the trainer
// owns the loss. State lives in registered parameters and buffers with the official names
// (encoder_q.*, encoder_k.*, queue, queue_ptr), so a checkpoint is a state dict in and out.
import { Linear, Module, ReLU, ResNet, Sequential } from "../nn/index.js";
import { F, cat, noGrad, randn, zeros, type Tensor } from "../torch/index.js";
import {
  contrastiveLogits,
  dequeueAndEnqueue,
  momentumUpdate,
  queueNegatives,
  singleProcessGather,
  singleProcessShuffle,
  type BatchShuffle,
  type ContrastiveLogits,
  type KeyGather,
} from "./mechanisms.js";
import type { PhaseTimer } from "./phases.js";
import { checkMoCoSettings, type MoCoSettings } from "./settings.js";

/** One pair per direction: [q1·k2] alone, or [q1·k2, q2·k1] with the symmetric loss. */
export type MoCoOutput = ContrastiveLogits[];

/** Builds the backbone with an `fc` of `outputs` features (torchvision's `num_classes`). */
export type EncoderFactory = (outputs: number) => ResNet;

export interface MoCoOptions {
  /** How key images are shuffled across BN statistics (default: one-process random permutation). */
  shuffle?: BatchShuffle;
  /** How keys from all processes are gathered before enqueueing (default: this process only). */
  gatherKeys?: KeyGather;
}

/** v2: fc → Sequential(Linear(d, d), ReLU, fc), as main_moco.py, so head keys are fc.0.* and fc.2.*. */
export function addMlpHead(encoder: ResNet): void {
  const fc = encoder.fc;
  if (!(fc instanceof Linear)) throw new TypeError("MoCo: the encoder's fc must be a Linear to add the MLP head");
  const d = fc.inFeatures;
  encoder.registerModule("fc", new Sequential(new Linear(d, d), new ReLU(), fc));
}

export class MoCo extends Module<[Tensor, Tensor], MoCoOutput> {
  readonly settings: MoCoSettings;
  private readonly batchShuffle: BatchShuffle;
  private readonly gatherKeys: KeyGather;

  constructor(baseEncoder: EncoderFactory, settings: MoCoSettings, options: MoCoOptions = {}) {
    super();
    checkMoCoSettings(settings);
    this.settings = { ...settings };
    this.batchShuffle = options.shuffle ?? singleProcessShuffle;
    this.gatherKeys = options.gatherKeys ?? singleProcessGather;

    // f_q and f_k: the key encoder starts as a copy and receives no gradient.
    const encoderQ = baseEncoder(settings.dim);
    if (settings.mlp) addMlpHead(encoderQ);
    const encoderK = encoderQ.copy();
    encoderK.requiresGrad_(false);
    this.registerModule("encoder_q", encoderQ);
    this.registerModule("encoder_k", encoderK);

    // The queue of negatives: dim × K, random unit columns at the start.
    const queue = noGrad(() => {
      const raw = randn([settings.dim, settings.K]);
      const unit = F.normalize(raw, { dim: 0 });
      raw.dispose();
      return unit;
    });
    this.registerBuffer("queue", queue);
    this.registerBuffer("queue_ptr", zeros([1], { dtype: "int64" }));
  }

  get encoderQ(): ResNet {
    return this.child("encoder_q");
  }
  get encoderK(): ResNet {
    return this.child("encoder_k");
  }
  get queue(): Tensor {
    return this.buffer("queue");
  }
  get queuePtr(): Tensor {
    return this.buffer("queue_ptr");
  }

  /**
   * Query images and key images (two augmentations of the same batch) → logits and labels. `phases`,
   * if given, is told as each phase of Algorithm 1 ends (a profiler's; nothing else changes).
   */
  forward(imQ: Tensor, imK: Tensor, phases?: PhaseTimer): MoCoOutput {
    momentumUpdate(this.encoderK, this.encoderQ, this.settings.m);
    phases?.lap("momentum");
    if (!this.settings.symmetric) {
      const { output, keys } = this.contrast(imQ, imK, phases);
      this.enqueue(keys);
      phases?.lap("enqueue");
      return [output];
    }
    // Symmetric loss of the official CIFAR demo: each view is the query once, both keys are enqueued,
    // in the demo's order cat([k1, k2]): the keys of the first view (from the second pass) first.
    const first = this.contrast(imQ, imK, phases); // q1·k2
    const second = this.contrast(imK, imQ, phases); // q2·k1
    const keys = cat([second.keys, first.keys], 0);
    first.keys.dispose();
    second.keys.dispose();
    this.enqueue(keys);
    phases?.lap("enqueue");
    return [first.output, second.output];
  }

  /** Algorithm 1, from the queries to the logits; the keys are returned for enqueueing. */
  private contrast(imQ: Tensor, imK: Tensor, phases?: PhaseTimer): { output: ContrastiveLogits; keys: Tensor } {
    const q = this.encodeQueries(imQ); // queries: N×C
    phases?.lap("query");
    const k = this.encodeKeys(imK); // keys: N×C, no gradient
    phases?.lap("key");
    // The queue is copied: enqueueing overwrites it in place before the backward pass needs it.
    const negatives = queueNegatives(this.queue); // C×K
    const output = contrastiveLogits(q, k, negatives, this.settings.T);
    q.dispose();
    negatives.dispose();
    phases?.lap("logits");
    return { output, keys: k };
  }

  private encodeQueries(images: Tensor): Tensor {
    const features = this.encoderQ.forward(images);
    const q = F.normalize(features, { dim: 1 });
    features.dispose();
    return q;
  }

  private encodeKeys(images: Tensor): Tensor {
    return noGrad(() => {
      const { shuffled, unshuffle } = this.batchShuffle.shuffle(images);
      const features = this.encoderK.forward(shuffled);
      if (shuffled !== images) shuffled.dispose();
      const normalized = F.normalize(features, { dim: 1 });
      features.dispose();
      // The queue holds float32 keys, and Gloo refuses to all-gather bfloat16: keys leave autocast here.
      const k = normalized.float();
      if (k !== normalized) normalized.dispose();
      const inOrder = unshuffle(k);
      if (inOrder !== k) k.dispose();
      return inOrder;
    });
  }

  private enqueue(keys: Tensor): void {
    const all = this.gatherKeys(keys);
    dequeueAndEnqueue(this.queue, this.queuePtr, all);
    if (all !== keys) all.dispose();
    keys.dispose();
  }
}

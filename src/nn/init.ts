// torch.nn.init: the initialisers PyTorch's layers and torchvision's ResNet use, with PyTorch's
// formulas computed in the same double-precision steps. They draw from the global generator (seeded by
// manualSeed), in place and under noGrad, so that the same seed and the same call order give the same
// weights as PyTorch.
import { noGrad, type Tensor } from "../torch/index.js";

export type FanMode = "fan_in" | "fan_out";
export type Nonlinearity = "linear" | "conv2d" | "sigmoid" | "tanh" | "relu" | "leaky_relu";

/** (fan_in, fan_out) as torch.nn.init._calculate_fan_in_and_fan_out. */
export function calculateFanInAndFanOut(tensor: Tensor): [number, number] {
  const shape = tensor.shape;
  if (shape.length < 2) {
    throw new RangeError(
      "calculateFanInAndFanOut: fan in and fan out can not be computed for a tensor with fewer than 2 dimensions",
    );
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [(shape[1] as number) * receptive, (shape[0] as number) * receptive];
}

/** torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv2d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5.0 / 3;
    case "relu":
      return Math.sqrt(2.0);
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2.0 / (1 + slope ** 2));
    }
    default:
      throw new TypeError(`calculateGain: unsupported nonlinearity ${String(nonlinearity)}`);
  }
}

function fan(tensor: Tensor, mode: FanMode): number {
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  if (mode === "fan_in") return fanIn;
  if (mode === "fan_out") return fanOut;
  throw new TypeError(`init: mode must be "fan_in" or "fan_out", got ${String(mode)}`);
}

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU after this layer (0 default). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

/** U(-bound, bound), bound = gain * sqrt(3 / fan), as torch.nn.init.kaiming_uniform_. */
export function kaimingUniform_(tensor: Tensor, options: KaimingOptions = {}): Tensor {
  const std =
    calculateGain(options.nonlinearity ?? "leaky_relu", options.a ?? 0) /
    Math.sqrt(fan(tensor, options.mode ?? "fan_in"));
  const bound = Math.sqrt(3.0) * std;
  return noGrad(() => tensor.uniform_(-bound, bound));
}

/** N(0, std²), std = gain / sqrt(fan), as torch.nn.init.kaiming_normal_. */
export function kaimingNormal_(tensor: Tensor, options: KaimingOptions = {}): Tensor {
  const std =
    calculateGain(options.nonlinearity ?? "leaky_relu", options.a ?? 0) /
    Math.sqrt(fan(tensor, options.mode ?? "fan_in"));
  return noGrad(() => tensor.normal_(0, std));
}

export function uniform_(tensor: Tensor, low = 0, high = 1): Tensor {
  return noGrad(() => tensor.uniform_(low, high));
}

export function normal_(tensor: Tensor, mean = 0, std = 1): Tensor {
  return noGrad(() => tensor.normal_(mean, std));
}

export function constant_(tensor: Tensor, value: number): Tensor {
  return noGrad(() => tensor.fill_(value));
}

export function ones_(tensor: Tensor): Tensor {
  return constant_(tensor, 1);
}

export function zeros_(tensor: Tensor): Tensor {
  return noGrad(() => tensor.zero_());
}

// Builds an ONNX graph node by node: unique value names, float initializers, and the graph's
// single input and output with a symbolic batch dimension.
import { DataType, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from "./proto.js";

/** A value of the graph: its name and its shape without the leading (symbolic) batch dimension. */
export interface Value {
  readonly name: string;
  readonly shape: readonly number[];
}

export const intAttr = (name: string, value: number): AttributeProto => ({ name, type: "int", value });
export const intsAttr = (name: string, value: readonly number[]): AttributeProto => ({ name, type: "ints", value });
export const floatAttr = (name: string, value: number): AttributeProto => ({ name, type: "float", value });

export class GraphBuilder {
  private readonly used = new Set<string>();
  private readonly nodes: NodeProto[] = [];
  private readonly initializers: TensorProto[] = [];

  /** `reserved` names (the graph's input and output) are never handed out by fresh(). */
  constructor(reserved: readonly string[]) {
    for (const name of reserved) this.used.add(name);
  }

  /** `base`, or `base_1`, `base_2`, ... when taken: a module reused in a forward (ResNet's relu) gets one name per use. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  /** Adds a float32 constant; returns its value name. */
  constant(base: string, dims: readonly number[], data: Float32Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new Error(`exportOnnx: ${base} has ${data.length} elements, expected ${expected} for [${dims.join(", ")}]`);
    }
    const name = this.fresh(base);
    // raw_data is little-endian, as are the typed arrays of every platform Node and libtorch run on here.
    const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dims: [...dims], dataType: DataType.FLOAT, rawData });
    return name;
  }

  /** Adds a one-output node; returns the output's value name. */
  node(opType: string, inputs: readonly string[], base: string, attributes: readonly AttributeProto[] = []): string {
    const output = this.fresh(base);
    this.nodes.push({ name: output, opType, inputs, outputs: [output], attributes });
    return output;
  }

  /**
   * The finished graph, computing `result` into the reserved name `outputName`: `result` is renamed
   * wherever it appears, or copied by an Identity node when no node produces it (a model that
   * returns its input).
   */
  finish(name: string, input: Value, result: Value, outputName: string): GraphProto {
    if (this.nodes.some((n) => n.outputs.includes(result.name))) {
      const rename = (names: readonly string[]) => names.map((v) => (v === result.name ? outputName : v));
      for (const [i, n] of this.nodes.entries()) {
        this.nodes[i] = { ...n, inputs: rename(n.inputs), outputs: rename(n.outputs) };
      }
    } else {
      this.nodes.push({
        name: outputName,
        opType: "Identity",
        inputs: [result.name],
        outputs: [outputName],
        attributes: [],
      });
    }
    const info = (v: Value, valueName: string) => ({
      name: valueName,
      elemType: DataType.FLOAT,
      shape: ["batch", ...v.shape],
    });
    return {
      name,
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: [info(input, input.name)],
      outputs: [info(result, outputName)],
    };
  }
}

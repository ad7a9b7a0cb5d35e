// The subset of onnx.proto (ONNX IR, github.com/onnx/onnx/blob/main/onnx/onnx.proto) that a
// feed-forward float network needs, as plain TypeScript values, and their protobuf encoding. Field
// numbers are onnx.proto's.
import { ProtoMessage } from "./protobuf.js";

/** TensorProto.DataType values used here. */
export const DataType = Object.freeze({ FLOAT: 1, INT64: 7 } as const);
export type DataType = (typeof DataType)[keyof typeof DataType];

/** A constant tensor stored in the file (little-endian `raw_data`). */
export interface TensorProto {
  name: string;
  dims: readonly number[];
  dataType: DataType;
  rawData: Uint8Array;
}

export type AttributeProto =
  | { name: string; type: "float"; value: number }
  | { name: string; type: "int"; value: number }
  | { name: string; type: "ints"; value: readonly number[] };

export interface NodeProto {
  name: string;
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: readonly AttributeProto[];
}

/** A graph input or output: a tensor type with a shape whose dims are sizes or symbolic names. */
export interface ValueInfoProto {
  name: string;
  elemType: DataType;
  shape: readonly (number | string)[];
}

export interface GraphProto {
  name: string;
  nodes: readonly NodeProto[];
  initializers: readonly TensorProto[];
  inputs: readonly ValueInfoProto[];
  outputs: readonly ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  /** Versions of the default ("ai.onnx") operator set. */
  opsetVersion: number;
  producerName: string;
  producerVersion?: string;
  graph: GraphProto;
  /** ModelProto.metadata_props: free key/value strings (ours: how to preprocess the input). */
  metadataProps?: Readonly<Record<string, string>>;
}

// AttributeProto.AttributeType
const ATTRIBUTE_TYPE = { float: 1, int: 2, ints: 7 } as const;

function tensorMessage(t: TensorProto): ProtoMessage {
  const m = new ProtoMessage();
  for (const d of t.dims) m.int(1, d); // dims
  m.int(2, t.dataType); // data_type
  m.string(8, t.name); // name
  m.bytes(9, t.rawData); // raw_data
  return m;
}

function attributeMessage(a: AttributeProto): ProtoMessage {
  const m = new ProtoMessage().string(1, a.name).int(20, ATTRIBUTE_TYPE[a.type]); // name, type
  switch (a.type) {
    case "float":
      return m.float(2, a.value); // f
    case "int":
      return m.int(3, a.value); // i
    case "ints":
      for (const v of a.value) m.int(8, v); // ints
      return m;
  }
}

function nodeMessage(n: NodeProto): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i); // input
  for (const o of n.outputs) m.string(2, o); // output
  m.string(3, n.name).string(4, n.opType); // name, op_type
  for (const a of n.attributes) m.message(5, attributeMessage(a)); // attribute
  return m;
}

function valueInfoMessage(v: ValueInfoProto): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.shape) {
    // TensorShapeProto.dim: Dimension { dim_value = 1 | dim_param = 2 }
    const dim = typeof d === "number" ? new ProtoMessage().int(1, d) : new ProtoMessage().string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoMessage().int(1, v.elemType).message(2, shape); // elem_type, shape
  const type = new ProtoMessage().message(1, tensorType); // TypeProto.tensor_type
  return new ProtoMessage().string(1, v.name).message(2, type); // name, type
}

function graphMessage(g: GraphProto): ProtoMessage {
  const m = new ProtoMessage();
  for (const n of g.nodes) m.message(1, nodeMessage(n)); // node
  m.string(2, g.name); // name
  for (const t of g.initializers) m.message(5, tensorMessage(t)); // initializer
  for (const v of g.inputs) m.message(11, valueInfoMessage(v)); // input
  for (const v of g.outputs) m.message(12, valueInfoMessage(v)); // output
  return m;
}

/** The bytes of an .onnx file. */
export function encodeModel(model: ModelProto): Uint8Array {
  const m = new ProtoMessage().int(1, model.irVersion); // ir_version
  m.string(2, model.producerName); // producer_name
  if (model.producerVersion !== undefined) m.string(3, model.producerVersion); // producer_version
  m.message(7, graphMessage(model.graph)); // graph
  m.message(8, new ProtoMessage().string(1, "").int(2, model.opsetVersion)); // opset_import: domain, version
  for (const [key, value] of Object.entries(model.metadataProps ?? {}))
    m.message(14, new ProtoMessage().string(1, key).string(2, value)); // metadata_props: StringStringEntryProto
  return m.toBytes();
}

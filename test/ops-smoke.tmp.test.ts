import * as torch from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";
torch.manualSeed(0);
const x = torch.randn([3, 4]);
const y = torch.randn([4]);
crossCheck("smoke", [
  op({ name: "add", expr: "x + y * 2", inputs: { x, y }, ours: ({ x, y }) => x.add(y, 2), grad: ["x", "y"] }),
  op({ name: "max", expr: "x.max(dim=1)", inputs: { x }, ours: ({ x }) => x.max(1), grad: ["x"] }),
  op({ name: "bad", expr: "x * 3", inputs: { x }, ours: ({ x }) => x.mul(3.001) }),
  op({ name: "item", expr: "x.sum().item()", inputs: { x }, ours: ({ x }) => x.sum().item() }),
]);

import { TwoViewAugment, mocoV2Config } from "/work/main/src/data/index.js";
import { randint, setNumThreads } from "/work/main/src/torch/index.js";
setNumThreads(1);
for (const [n, s, o] of [[64, 256, 224], [256, 28, 28], [256, 32, 32]]) {
const x = randint(0, 256, [n, s === 28 ? 1 : 3, s, s], { dtype: "uint8" });
const v = new TwoViewAugment(mocoV2Config({ size: o }), { seed: 1 });
for (let i = 0; i < 4; i++) {
  const c0 = process.cpuUsage(); const t0 = performance.now();
  const { query, key } = v.apply(x); query.dispose(); key.dispose();
  const c = process.cpuUsage(c0);
  if (i > 0) console.log(`${n}x${s}->${o} wall ${(performance.now() - t0).toFixed(0)} ms user ${(c.user / 1000).toFixed(0)} sys ${(c.system / 1000).toFixed(0)}  ${(n/((performance.now() - t0)/1000)).toFixed(0)} img/s`);
}}

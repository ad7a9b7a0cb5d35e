// The progress reporter lives in the loop layer (src/loop/progress.ts), which linear evaluation shares;
// this path stays for code that imported it from pretraining.
export * from "../loop/progress.js";

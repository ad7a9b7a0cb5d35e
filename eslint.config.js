import js from "@eslint/js";
import boundaries from "eslint-plugin-boundaries";
import tseslint from "typescript-eslint";

// The one-way layers of src/ (docs/architecture.md §1), enforced by
// eslint-plugin-boundaries. Bottom-up; a file may import its own layer and the layers of lower
// rank, never a layer of higher rank nor a sibling of the same rank. The order is the one today's
// imports have (train imports eval for the kNN monitor and encoder for initial weights; dist
// imports train's DataParallel interface; encoder, export and search store through io).
//
//   rank  layer     files                                may import
//   -     errors    src/errors.ts                        nothing of src/ (any layer may import it)
//   0     util      src/util/** (the atomic writer)      errors
//   -     native    src/torch/native.ts (the binding)    errors, util; imported by torch alone
//   1     torch     src/torch/**                         errors, util, native
//   2     io        src/io/** (safetensors, .npy)        errors, util, torch
//   3     nn        src/nn/**                            ... io
//   4     optim     src/optim/**                         ... nn
//   5     data      src/data/**                          ... optim
//   6     moco      src/moco/**                          ... data
//   7     encoder   src/encoder/**                       ... moco
//   8     loop      src/loop/** (the training loop)      ... encoder
//   9     eval      src/eval/**                          ... loop (not export, search)
//   9     export    src/export/**                        ... loop (not eval, search)
//   9     search    src/search/**                        ... loop (not eval, export)
//   10    train     src/train/**                         ... eval, export, search
//   11    dist      src/dist/**                          ... train
//   12    serve     src/serve/** (moco serve)            ... dist (not report)
//   12    report    src/report/** (moco report)          ... dist (not serve)
//   13    cli       src/cli/**                           ... serve, report
//   -     api       src/index.ts (the package's entry)   everything; imported by nothing in src/
//
// bench/, test/ and scripts/ are no layer: they may import anything. errors, native and api are
// single files, so they are file categories below; the folders are the elements.
const LAYERS = [
  ["util", 0],
  ["torch", 1],
  ["io", 2],
  ["nn", 3],
  ["optim", 4],
  ["data", 5],
  ["moco", 6],
  ["encoder", 7],
  ["loop", 8],
  ["eval", 9],
  ["export", 9],
  ["search", 9],
  ["train", 10],
  ["dist", 11],
  ["serve", 12],
  ["report", 12],
  ["cli", 13],
];

/** One policy per layer: no higher rank, no sibling, the binding only from torch, never the index. */
function layerPolicies() {
  return LAYERS.map(([type, rank]) => {
    const above = LAYERS.filter(([other, r]) => r > rank || (r === rank && other !== type)).map(([t]) => t);
    return {
      from: { element: { type } },
      disallow: {
        to: [
          ...(above.length > 0 ? [{ element: { types: { anyOf: above } } }] : []),
          ...(type === "torch" ? [] : [{ file: { categories: "binding" } }]),
          { file: { categories: "api" } },
        ],
      },
    };
  });
}

export default tseslint.config(
  { ignores: ["node_modules/", "native/build/", "dist/", "runs/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  // Type-aware rules on the TypeScript of tsconfig.json (src, test, bench, scripts/*.ts): no
  // promise left floating, none handed where a void callback is expected, no await of a
  // non-promise, in a codebase that mixes async I/O with synchronous tensor scopes. (The rest of
  // recommendedTypeChecked, the no-unsafe-* and unnecessary-assertion rules, is not on yet: it
  // reports ~60 spots, mostly style, across every layer.) node:test's test/describe/it return
  // promises that the runner itself awaits.
  {
    files: ["**/*.ts"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["test", "it", "describe", "suite", "before", "after"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
    },
  },
  // The boundaries resolver is CommonJS: eslint-module-utils loads resolvers with require().
  {
    files: ["**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly", exports: "writable" } },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
  {
    files: ["src/**/*.ts"],
    plugins: { boundaries },
    settings: {
      "boundaries/elements": LAYERS.map(([type]) => ({ type, pattern: `src/${type}/**`, partialMatch: false })),
      // Single files are file categories, not elements (layers are folders).
      "boundaries/files": [
        { category: "errors", pattern: "src/errors.ts" },
        { category: "binding", pattern: "src/torch/native.ts" },
        { category: "api", pattern: "src/index.ts" },
      ],
      "import/resolver": { "./scripts/eslint-ts-resolver.cjs": {} },
    },
    rules: {
      "boundaries/dependencies": [
        "error",
        {
          default: "allow",
          policies: [
            ...layerPolicies(),
            // errors.ts is below everything: it imports no other file of src/.
            {
              from: { file: { categories: "errors" } },
              disallow: { to: { element: { types: { anyOf: LAYERS.map(([type]) => type) } } } },
            },
          ],
        },
      ],
    },
  },
);

import js from "@eslint/js";
import boundaries from "eslint-plugin-boundaries";
import tseslint from "typescript-eslint";

// The one-way layers of src/ (design.md §1, style.md point 10), enforced by
// eslint-plugin-boundaries. Bottom-up; a file may import its own layer and any layer listed
// before it, never one after it. The order is the one today's imports have (train imports eval
// for the kNN monitor and encoder for initial weights; dist imports train's DataParallel
// interface; search reads what encoder computes and io stores; export writes through io).
//
//   layer     files                                may import
//   errors    src/errors.ts                        nothing of src/
//   util      src/util/** (the atomic writer)      errors
//   native    src/torch/native.ts (the binding)    errors, util; imported by torch alone
//   torch     src/torch/**                         errors, util, native
//   nn        src/nn/**                            errors, util, torch
//   optim     src/optim/**                         ... nn
//   data      src/data/**                          ... optim
//   moco      src/moco/**                          ... data
//   io        src/io/**                            ... moco
//   encoder   src/encoder/**                       ... io
//   export    src/export/**                        ... encoder
//   eval      src/eval/**                          ... export
//   search    src/search/**                        ... eval
//   train     src/train/**                         ... search
//   dist      src/dist/**                          ... train
//   cli       src/cli/**                           ... dist
//   api       src/index.ts (the package's entry)   everything; imported by nothing in src/
//
// bench/, test/ and scripts/ are no layer: they may import anything. errors, native and api are
// single files, so they are file categories below; the folders are the elements.
const LAYERS = [
  ["util", "src/util/**"],
  ["torch", "src/torch/**"],
  ["nn", "src/nn/**"],
  ["optim", "src/optim/**"],
  ["data", "src/data/**"],
  ["moco", "src/moco/**"],
  ["io", "src/io/**"],
  ["encoder", "src/encoder/**"],
  ["export", "src/export/**"],
  ["eval", "src/eval/**"],
  ["search", "src/search/**"],
  ["train", "src/train/**"],
  ["dist", "src/dist/**"],
  ["cli", "src/cli/**"],
];
const TYPES = LAYERS.map(([type]) => type);

/** One policy per layer: nothing above it; the binding only from torch; never the package's index. */
function layerPolicies() {
  return TYPES.map((type, at) => ({
    from: { element: { type } },
    disallow: {
      to: [
        ...(at + 1 < TYPES.length ? [{ element: { types: { anyOf: TYPES.slice(at + 1) } } }] : []),
        ...(type === "torch" ? [] : [{ file: { categories: "binding" } }]),
        { file: { categories: "api" } },
      ],
    },
  }));
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
      "boundaries/elements": LAYERS.map(([type, pattern]) => ({ type, pattern, partialMatch: false })),
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
            { from: { file: { categories: "errors" } }, disallow: { to: { element: { types: { anyOf: TYPES } } } } },
          ],
        },
      ],
    },
  },
);

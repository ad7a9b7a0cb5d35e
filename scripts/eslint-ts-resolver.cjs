// An eslint-module-utils resolver (interface version 2) for eslint-plugin-boundaries: moco-ts
// imports its TypeScript files by their compiled names ("./tensor.js" for tensor.ts), as NodeNext
// requires, which the plain node resolver cannot find. Relative ".js" specifiers are mapped back
// to the ".ts" file beside them; anything else (packages, node: builtins) is left to node's rules.
"use strict";
const { existsSync } = require("node:fs");
const { builtinModules } = require("node:module");
const { dirname, resolve } = require("node:path");

exports.interfaceVersion = 2;

exports.resolve = function resolveImport(source, file) {
  if (source.startsWith("node:") || builtinModules.includes(source)) return { found: true, path: null };
  if (!source.startsWith(".")) {
    try {
      return { found: true, path: require.resolve(source, { paths: [dirname(file)] }) };
    } catch {
      return { found: false };
    }
  }
  const target = resolve(dirname(file), source);
  for (const candidate of [target.replace(/\.js$/, ".ts"), target]) {
    if (existsSync(candidate)) return { found: true, path: candidate };
  }
  return { found: false };
};

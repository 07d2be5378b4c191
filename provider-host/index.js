// Runs in Pulumi's dynamic-provider host, never in the program: the `__provider`
// of each dynamic resource of raxx-rotations is one line that asks this module
// for a provider by module path and export name (components/provider-reference.ts).
// npm links it into node_modules (a `file:` dependency), so the host finds it
// from its own main module, and this file finds the project beside itself.
// The project's TypeScript is loaded through ts-node, transpile-only, as
// `pulumi up` loads the program.
"use strict";
const path = require("path");

/** The checkout whose providers run: this folder's parent, unless RAXX_PROJECT_ROOT names another (a checkout sharing these node_modules). */
const root = process.env.RAXX_PROJECT_ROOT || path.resolve(__dirname, "..");
let compiling = false;

exports.load = function load(modulePath, exportName) {
    // A process that already compiles TypeScript (the tests, under mocha) keeps its own compiler.
    if (!compiling && !require.extensions[".ts"]) {
        require(require.resolve("ts-node", { paths: [root] })).register({ transpileOnly: true, project: path.join(root, "tsconfig.json") });
    }
    compiling = true;
    const provider = require(path.join(root, modulePath))[exportName];
    if (!provider) throw new Error(`raxx-rotations: ${modulePath} exports no ${exportName} (is ${root} older than the stack's state?)`);
    return provider;
};

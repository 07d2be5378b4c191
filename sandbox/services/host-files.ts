// What the sandbox's SSH hosts hold, seen from outside: env files written over
// SSH are watched (fs.watch on their directory, plus a read on demand and at
// stop), and each managed `NAME=VALUE` line is put on the shared timeline as the
// IAM key its value belongs to — never the value itself. Unit restarts come from
// the systemctl stand-in's log, one line per `systemctl restart UNIT`.
import * as fs from "node:fs";
import * as path from "node:path";
import { KeyRegistry } from "./key-registry";
import { Timeline } from "./timeline";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `NAME=VALUE` lines of an env file (systemd EnvironmentFile style: comments
 * and blank lines skipped, the last assignment of a name wins). Values are
 * taken verbatim: the sandbox's writers never quote.
 */
export function parseEnvFile(text: string): Map<string, string> {
    const vars = new Map<string, string>();
    for (const line of text.split("\n")) {
        const trimmed = line.replace(/\r$/, "");
        if (trimmed === "" || trimmed.startsWith("#")) continue;
        const eq = trimmed.indexOf("=");
        if (eq <= 0) continue;
        const name = trimmed.slice(0, eq);
        if (NAME.test(name)) vars.set(name, trimmed.slice(eq + 1));
    }
    return vars;
}

/** Sets (or with `value` null, removes) one variable in env file text, keeping every other line. */
export function setEnvLine(text: string, name: string, value: string | null): string {
    const lines = text === "" ? [] : text.replace(/\n$/, "").split("\n");
    const kept = lines.filter((l) => !l.startsWith(`${name}=`));
    if (value !== null) kept.push(`${name}=${value}`);
    return kept.length === 0 ? "" : `${kept.join("\n")}\n`;
}

export interface TrackedFile {
    /** The host as consumers name it (config), e.g. vault-host.raxx.app. */
    host: string;
    /** The path as consumers name it, e.g. /etc/raxx/credentials.env. */
    envFile: string;
    /** Where it lives on this machine. */
    realPath: string;
    /** Timeline consumer: "<host>:<envFile>". */
    consumer: string;
    /** Names always recorded; others are recorded once they have held a known key. */
    names: Set<string>;
    /** name → what the timeline last recorded for it (key id, "unknown"); absent = not present. */
    held: Map<string, string>;
}

/**
 * Watches env files and records, per managed name, which key each holds.
 * One fs.watch per directory; every event rescans the files tracked there
 * (the atomic write is a temp file renamed over the target, so any event in
 * the directory may be the one that matters).
 */
export class EnvFileWatcher {
    private readonly files = new Map<string, TrackedFile>();
    private readonly watchers = new Map<string, fs.FSWatcher>();

    constructor(
        private readonly timeline: Timeline,
        private readonly keys: KeyRegistry,
        private readonly service: string,
        private readonly log: (line: string) => void,
    ) {}

    /** Starts tracking a file (idempotent; extra names are added). Records what it already holds, as the world's. */
    track(host: string, envFile: string, realPath: string, names: string[] = []): TrackedFile {
        const key = path.resolve(realPath);
        let file = this.files.get(key);
        if (!file) {
            file = { host, envFile, realPath: key, consumer: `${host}:${envFile}`, names: new Set(), held: new Map() };
            this.files.set(key, file);
            this.watchDir(path.dirname(key));
        }
        for (const n of names) file.names.add(n);
        this.scan(file, "world");
        return file;
    }

    tracked(): TrackedFile[] {
        return [...this.files.values()];
    }

    find(realPath: string): TrackedFile | undefined {
        return this.files.get(path.resolve(realPath));
    }

    /** Reads every tracked file now (the final read at stop, or a test that cannot wait for fs.watch). */
    scanAll(origin: "program" | "world" = "program"): void {
        for (const f of this.files.values()) this.scan(f, origin);
    }

    /** Compares the file with what the timeline holds and records each managed name that changed. */
    scan(file: TrackedFile, origin: "program" | "world" = "program", at?: number): void {
        let text = "";
        try {
            text = fs.readFileSync(file.realPath, "utf8");
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== "ENOENT")
                this.log(`hosts: cannot read ${file.realPath}: ${(err as Error).message}`);
        }
        const vars = parseEnvFile(text);
        const stamp = at ?? this.timeline.now();
        for (const [name, value] of vars) {
            if (file.names.has(name)) continue;
            // An unlisted name joins once it holds a key this world issued.
            if (this.keys.classify(value) !== "unknown") file.names.add(name);
        }
        for (const name of [...file.names].sort()) {
            const value = vars.get(name);
            const holds = value === undefined ? null : this.keys.classify(value);
            const before = file.held.get(name) ?? null;
            if (holds === before) continue;
            if (holds === null) file.held.delete(name);
            else file.held.set(name, holds);
            this.timeline.recordSecret({
                at: stamp,
                service: this.service,
                consumer: file.consumer,
                name,
                holds,
                origin: origin === "world" ? "world" : undefined,
            });
        }
    }

    close(): void {
        for (const w of this.watchers.values()) w.close();
        this.watchers.clear();
    }

    private watchDir(dir: string): void {
        if (this.watchers.has(dir)) return;
        fs.mkdirSync(dir, { recursive: true });
        const watcher = fs.watch(dir, { persistent: false }, () => {
            for (const f of this.files.values()) if (path.dirname(f.realPath) === dir) this.scan(f);
        });
        watcher.on("error", (err) => this.log(`hosts: watching ${dir} failed: ${err.message}`));
        this.watchers.set(dir, watcher);
    }
}

export interface RestartRecord {
    /** The line's position (0-based) in the log. */
    seq: number;
    unit: string;
    /** The client port sshd saw (SSH_CONNECTION), which tells the host through the host's proxy. */
    clientPort?: number;
}

/** Follows the systemctl stand-in's log: `restart <unit> <SSH_CONNECTION>` lines, appended. */
export class RestartLogFollower {
    private offset = 0;
    private seq = 0;
    private partial = "";
    private watcher: fs.FSWatcher | undefined;

    constructor(
        readonly file: string,
        private readonly onRestart: (r: RestartRecord) => void,
        private readonly log: (line: string) => void,
    ) {}

    start(): void {
        if (!fs.existsSync(this.file)) fs.writeFileSync(this.file, "");
        this.watcher = fs.watch(this.file, { persistent: false }, () => this.poll());
        this.watcher.on("error", (err) => this.log(`hosts: watching ${this.file} failed: ${err.message}`));
    }

    /** Reads what was appended since the last call. */
    poll(): void {
        let fd: number;
        try {
            fd = fs.openSync(this.file, "r");
        } catch {
            return;
        }
        try {
            const size = fs.fstatSync(fd).size;
            if (size <= this.offset) return;
            const buf = Buffer.alloc(size - this.offset);
            fs.readSync(fd, buf, 0, buf.length, this.offset);
            this.offset = size;
            const lines = (this.partial + buf.toString("utf8")).split("\n");
            this.partial = lines.pop() ?? "";
            for (const line of lines) {
                const parts = line.trim().split(/\s+/);
                if (parts[0] !== "restart" || !parts[1]) continue;
                const clientPort = Number(parts[3]);
                this.onRestart({
                    seq: this.seq++,
                    unit: parts[1],
                    clientPort: Number.isFinite(clientPort) && clientPort > 0 ? clientPort : undefined,
                });
            }
        } finally {
            fs.closeSync(fd);
        }
    }

    close(): void {
        this.poll();
        this.watcher?.close();
        this.watcher = undefined;
    }
}

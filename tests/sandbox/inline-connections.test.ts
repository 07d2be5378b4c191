// The engine tier's "14 UNAVAILABLE: No connection established" flake, reproduced
// without an engine: an inline run's client to its CLI's monitor is never closed
// by @pulumi/pulumi, so after that CLI dies its subchannel stays in
// TRANSIENT_FAILURE in grpc-js's process-wide pool; a later run's CLI that
// listens on the same recycled port must still be reachable by a new client made
// with the SDK's own client options (sandbox/engine.ts isolateInlineRunConnections).
import * as assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { isolateInlineRunConnections } from "../../sandbox/engine";
import { freePort } from "../../sandbox/moto";

const bytes = {
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
};
const service = {
    ping: { path: "/raxx.Monitor/Ping", requestStream: false, responseStream: false, ...bytes },
} as unknown as grpc.ServiceDefinition;
const Client = grpc.makeGenericClientConstructor(service, "Monitor");
type PingClient = grpc.Client & { ping(req: Buffer, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void };

function listen(port: number): Promise<grpc.Server> {
    const server = new grpc.Server();
    server.addService(service, { ping: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from("pong")) });
    return new Promise((resolve, reject) =>
        server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve(server))),
    );
}

function connect(port: number): PingClient {
    return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), sdkClientOptions()) as unknown as PingClient;
}

function ping(client: PingClient): Promise<string> {
    return new Promise((resolve) =>
        client.ping(Buffer.from("ping"), (err, res) => resolve(err ? `${err.code} ${err.details}` : String(res))),
    );
}

/** The options @pulumi/pulumi passes to its monitor and engine clients. */
function sdkClientOptions(): grpc.ClientOptions {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require("@pulumi/pulumi/runtime") as { grpcClientOptions: grpc.ClientOptions }).grpcClientOptions;
}

describe("sandbox: inline runs in one process, one CLI after another", () => {
    it("a new run's client reaches its live engine on a port where an earlier run's engine died under its still-open client", async () => {
        isolateInlineRunConnections();
        const port = await freePort();
        const firstCli = await listen(port);
        const firstRun = connect(port);
        assert.equal(await ping(firstRun), "pong");
        firstCli.forceShutdown(); // the CLI killed under its program
        assert.match(await ping(firstRun), /^14 /, "the killed run's program calls a closed port"); // its subchannel now backs off
        const laterCli = await listen(port); // a later CLI gets the same port
        try {
            const laterRun = connect(port);
            assert.equal(await ping(laterRun), "pong", "the later run inherited the dead run's failed connection");
            laterRun.close();
        } finally {
            firstRun.close(); // @pulumi/pulumi never does this for an inline run
            laterCli.forceShutdown();
        }
    });
});

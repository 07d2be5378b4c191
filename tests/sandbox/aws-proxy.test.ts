import * as assert from "node:assert/strict";
import { CreateAccessKeyCommand, DeleteAccessKeyCommand, IAMClient, UpdateAccessKeyCommand } from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { World, WorldEvent } from "../../sandbox/world";
import { adminIam, expectReject, startWorld, stsAs, WORLD_START_TIMEOUT_MS } from "./helpers";

describe("sandbox: recording proxy in front of moto", function () {
    let world: World;
    let iam: IAMClient;

    before(async function () {
        this.timeout(WORLD_START_TIMEOUT_MS);
        world = await startWorld(["alice", "bob", "carol", "dave", "erin", "frank", "grace"]);
        iam = adminIam(world);
    });

    after(async () => {
        iam?.destroy();
        await world?.stop();
    });

    afterEach(() => world.clearFaults());

    async function createKey(user: string): Promise<{ id: string; secret: string }> {
        const out = await iam.send(new CreateAccessKeyCommand({ UserName: user }));
        return { id: out.AccessKey?.AccessKeyId ?? "", secret: out.AccessKey?.SecretAccessKey ?? "" };
    }

    it("records create, deactivate and delete of a key in order, each stamped where it happened", async () => {
        const before = world.timeline.now();
        const key = await createKey("alice");
        const afterCreate = world.timeline.now();
        await iam.send(new UpdateAccessKeyCommand({ UserName: "alice", AccessKeyId: key.id, Status: "Inactive" }));
        const afterUpdate = world.timeline.now();
        await iam.send(new DeleteAccessKeyCommand({ UserName: "alice", AccessKeyId: key.id }));

        const entries = world.exportTimeline().iam.filter((e) => e.keyId === key.id);
        assert.deepEqual(
            entries.map((e) => [e.user, e.status]),
            [
                ["alice", "Active"],
                ["alice", "Inactive"],
                ["alice", "Deleted"],
            ],
        );
        assert.ok(entries[0].at > before && entries[0].at < afterCreate);
        const createAnswered = world.exportTimeline().events.find((e) => e.event === "CreateAccessKey" && e.at > before);
        assert.equal(entries[0].at, createAnswered?.at, "a change to Active is stamped when moto's answer arrives");
        assert.ok(entries[1].at > afterCreate && entries[1].at < afterUpdate);
        assert.ok(entries[2].at > afterUpdate);
        assert.deepEqual(world.snapshot().iam.alice, {});
    });

    it("stamps a change away from Active when the request is forwarded, before moto answers", async () => {
        const key = await createKey("erin");
        world.fault({ service: "iam", path: "UpdateAccessKey", delayMs: 150, times: 1 });
        const sent = world.timeline.now();
        await iam.send(new UpdateAccessKeyCommand({ UserName: "erin", AccessKeyId: key.id, Status: "Inactive" }));
        const inactive = world.exportTimeline().iam.find((e) => e.keyId === key.id && e.status === "Inactive");
        const answered = world
            .exportTimeline()
            .events.filter((e) => e.event === "UpdateAccessKey")
            .pop();
        assert.ok(inactive && answered);
        assert.ok(inactive.at >= sent + 140, "stamped after the delay, when forwarded");
        assert.ok(inactive.at < answered.at, "stamped before the answer came back");
    });

    it("records a failed change as an event only", async () => {
        const err = await expectReject(
            iam.send(new UpdateAccessKeyCommand({ UserName: "alice", AccessKeyId: "AKIANOSUCHKEY0000000", Status: "Inactive" })),
        );
        assert.equal(err.name, "NoSuchEntityException");
        const t = world.exportTimeline();
        assert.equal(t.iam.filter((e) => e.keyId === "AKIANOSUCHKEY0000000").length, 0);
        assert.equal(t.events.filter((e) => e.event === "UpdateAccessKey" && e.status === 404).length, 1);
    });

    it("surfaces moto's two-key limit as LimitExceeded (409) and records no third key", async () => {
        await createKey("bob");
        await createKey("bob");
        const err = await expectReject(createKey("bob"));
        assert.equal(err.name, "LimitExceededException");
        assert.equal(err.$metadata?.httpStatusCode, 409);
        assert.equal(Object.keys(world.snapshot().iam.bob).length, 2);
    });

    it("tells STS from IAM, and moto refuses deleted keys and wrong secrets but accepts Inactive ones", async () => {
        const key = await createKey("carol");
        const id = await stsAs(world, key.id, key.secret).send(new GetCallerIdentityCommand({}));
        assert.equal(id.Arn, "arn:aws:iam::123456789012:user/carol");

        const wrong = await expectReject(stsAs(world, key.id, "not-the-secret").send(new GetCallerIdentityCommand({})));
        assert.equal(wrong.name, "SignatureDoesNotMatch");

        await iam.send(new UpdateAccessKeyCommand({ UserName: "carol", AccessKeyId: key.id, Status: "Inactive" }));
        const inactive = await stsAs(world, key.id, key.secret).send(new GetCallerIdentityCommand({}));
        assert.equal(inactive.Arn, "arn:aws:iam::123456789012:user/carol");

        await iam.send(new DeleteAccessKeyCommand({ UserName: "carol", AccessKeyId: key.id }));
        const deleted = await expectReject(stsAs(world, key.id, key.secret).send(new GetCallerIdentityCommand({})));
        assert.equal(deleted.name, "InvalidClientTokenId");

        const sts = world.exportTimeline().events.filter((e) => e.service === "sts");
        assert.deepEqual(
            sts.slice(-4).map((e) => [e.event, e.status]),
            [
                ["GetCallerIdentity", 200],
                ["GetCallerIdentity", 403],
                ["GetCallerIdentity", 200],
                ["GetCallerIdentity", 403],
            ],
        );
    });

    it("announces each answered request on world.events", async () => {
        const seen: WorldEvent[] = [];
        const listener = (e: WorldEvent) => seen.push(e);
        world.events.on("event", listener);
        try {
            await createKey("dave");
        } finally {
            world.events.off("event", listener);
        }
        assert.deepEqual(
            seen.map((e) => [e.name, e.status]),
            [["iam CreateAccessKey", 200]],
        );
    });

    it("a fault with times: 2 answers twice in AWS's error shape, then passes", async () => {
        world.fault({ service: "iam", path: "ListAccessKeys", status: 503, times: 2 });
        for (let i = 0; i < 2; i++) {
            const err = await expectReject(world.listKeys("alice"));
            assert.equal(err.name, "ServiceUnavailable");
            assert.equal(err.$metadata?.httpStatusCode, 503);
        }
        assert.deepEqual(await world.listKeys("alice"), []);
    });

    it("a fault only matches its service: an STS fault leaves IAM alone", async () => {
        world.fault({ service: "sts", status: 403, code: "InvalidClientTokenId" });
        await world.listKeys("alice");
        const key = await createKey("grace");
        const err = await expectReject(stsAs(world, key.id, key.secret).send(new GetCallerIdentityCommand({})));
        assert.equal(err.name, "InvalidClientTokenId");
    });

    it("a hang never answers until the client gives up, and is logged with status 0", async () => {
        world.fault({ service: "sts", hang: true });
        const body = "Action=GetCallerIdentity&Version=2011-06-15";
        const err = await expectReject(
            fetch(world.endpoints.sts, {
                method: "POST",
                headers: { "content-type": "application/x-www-form-urlencoded" },
                body,
                signal: AbortSignal.timeout(300),
            }),
        );
        assert.match(err.name, /TimeoutError|AbortError/);
        // The server notices the closed socket asynchronously.
        await new Promise((r) => setTimeout(r, 100));
        const last = world
            .exportTimeline()
            .events.filter((e) => e.service === "sts")
            .pop();
        assert.equal(last?.status, 0);
        assert.equal(last?.fault, "hang");
    });

    it("drift changes a key out of band through moto and lands on the timeline as the world's", async () => {
        const keyId = await world.createKeyByHand("erin");
        await world.drift({ service: "iam", user: "erin", keyId, status: "Inactive" });
        assert.deepEqual(await world.listKeys("erin").then((ks) => ks.find((k) => k.keyId === keyId)?.status), "Inactive");
        await world.drift({ service: "iam", user: "erin", keyId, status: "Deleted" });
        const entries = world.exportTimeline().iam.filter((e) => e.keyId === keyId);
        assert.deepEqual(
            entries.map((e) => [e.status, e.origin]),
            [
                ["Active", "world"],
                ["Inactive", "world"],
                ["Deleted", "world"],
            ],
        );
    });

    it("the exported timeline never contains a SecretAccessKey", async () => {
        const key = await createKey("frank");
        assert.ok(key.secret.length >= 20);
        assert.ok(world.isIssuedSecret(key.secret));
        const json = JSON.stringify(world.exportTimeline());
        assert.ok(json.includes(key.id), "the key id is recorded");
        assert.ok(!json.includes(key.secret), "the secret is not");
    });
});

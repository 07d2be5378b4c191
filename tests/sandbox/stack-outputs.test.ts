// Reading the stack's outputs again after a torn read of the file backend's
// metadata sidecar ("failed to load checkpoint: EOF"), and only then.
import * as assert from "node:assert/strict";
import { stackOutputs } from "../../sandbox/stack-outputs";

function flakyStack(failures: string[]) {
    let calls = 0;
    return {
        get calls() {
            return calls;
        },
        outputs: async () => {
            calls++;
            const next = failures.shift();
            if (next) throw new Error(`code: -2\n stderr: ${next}`);
            return { rotations: { value: "ok", secret: false } };
        },
    };
}

describe("the sandbox's read of the stack outputs", () => {
    it("reads again after 'failed to load checkpoint: EOF' (a write truncating fileblob's .attrs sidecar)", async () => {
        const stack = flakyStack(["error: failed to load checkpoint: EOF", "error: failed to load checkpoint: EOF"]);
        assert.deepEqual(await stackOutputs(stack, 4, 1), { rotations: { value: "ok", secret: false } });
        assert.equal(stack.calls, 3);
    });

    it("any other error, or the same one past the attempts, is thrown", async () => {
        const other = flakyStack(["error: no stack named 'rehearsal' found"]);
        await assert.rejects(stackOutputs(other, 4, 1), /no stack named/);
        assert.equal(other.calls, 1, "not retried");
        const always = flakyStack(Array(5).fill("error: failed to load checkpoint: EOF"));
        await assert.rejects(stackOutputs(always, 3, 1), /failed to load checkpoint: EOF/);
        assert.equal(always.calls, 3);
    });
});

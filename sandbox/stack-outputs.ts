// The stack's outputs, read through `pulumi stack output`. On the file backend a
// read can meet the checkpoint's metadata sidecar (`<stack>.json.attrs`) while a
// write has just truncated it: gocloud's fileblob writes that file in place
// (os.Create, then encode), unlike the checkpoint itself (a temp file renamed),
// and the CLI then fails "failed to load checkpoint: EOF". Seen once in CI after
// a sweep's killed-and-recovered rehearsal. A read is harmless to repeat.
import { OutputMap, Stack } from "@pulumi/pulumi/automation";

const TORN_READ = /failed to load checkpoint: EOF/;

export async function stackOutputs(stack: Pick<Stack, "outputs">, attempts = 4, firstDelayMs = 250): Promise<OutputMap> {
    for (let attempt = 1; ; attempt++) {
        try {
            return await stack.outputs();
        } catch (err) {
            if (attempt >= attempts || !TORN_READ.test(String((err as Error).message))) throw err;
            await new Promise((resolve) => setTimeout(resolve, firstDelayMs * 2 ** (attempt - 1)));
        }
    }
}

// What Pulumi's own dynamic-provider host (@pulumi/pulumi's
// pulumi-resource-pulumi-nodejs script) needs when the engine starts it for an
// inline stack. The script finds @pulumi/pulumi with `require.resolve` from its
// working directory, which the engine sets to the stack's work dir — a temp
// folder with no node_modules for validate's temporary stack — so without the
// project's node_modules named it prints nothing and the update fails with
// "could not read plugin stdout". (The sandbox's stand-in names the path itself.)
import * as path from "node:path";

export function providerHostEnv(projectDir: string): Record<string, string> {
    return { NODE_PATH: path.join(projectDir, "node_modules") };
}

// Runs the real program under Pulumi's mock runtime and records what it
// registers (operations/mock-run.ts, shared with `npm run plan`). Test files state
// scenarios and assertions; they import the machinery from here.
export { fakeSecretFor, runProgram } from "../../operations/mock-run";
export type { Registration, Run, RunOptions, Warning } from "../../operations/mock-run";

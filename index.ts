// Entry point for `pulumi preview` / `pulumi up`. The program lives in
// program.ts so that the engine tier can run the very same function inline.
import { program } from "./program";

export = program;

import * as assert from "node:assert/strict";
import { scenarioFiles, SCENARIO_GROUPS } from "./scenarios";

describe("engine tier: scenario files", () => {
    it("cover the engine, consumers and gates issues", () => {
        for (const name of [
            "first-deploy-and-bump", "retire", "collapsed-bump", "rollback", "two-credentials", "consumer-removed",
            "refused-jump", "adoption", "github-500", "killed-up", "drift", "heroku-429", "infisical-401",
            "gate-validation", "gate-probe", "gate-usage", "host-unreachable", "audit-webhook-down", "infisical-token",
            "host-key", "rename-and-move",
        ]) {
            assert.ok(scenarioFiles.includes(`${name}.yaml`), `sandbox/scenarios/${name}.yaml is missing`);
        }
    });

    it("each belongs to exactly one group of the engine tier, so none is left out", () => {
        const grouped = Object.values(SCENARIO_GROUPS).flat().map((n) => `${n}.yaml`);
        assert.deepEqual([...grouped].sort(), scenarioFiles);
    });
});

import { scenarioTests } from "./scenarios";

scenarioTests("faults");

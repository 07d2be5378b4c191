import { scenarioTests } from "./scenarios";

scenarioTests("emergency");

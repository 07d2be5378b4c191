import { scenarioTests } from "./scenarios";

scenarioTests(1, 3);

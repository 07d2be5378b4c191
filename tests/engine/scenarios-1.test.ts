import { scenarioTests } from "./scenarios";

scenarioTests(0, 3);

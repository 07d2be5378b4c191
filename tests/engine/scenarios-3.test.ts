import { scenarioTests } from "./scenarios";

scenarioTests(2, 3);

import { scenarioTests } from "./scenarios";

scenarioTests("sweep");

import { scenarioTests } from "./scenarios";

scenarioTests("gates");

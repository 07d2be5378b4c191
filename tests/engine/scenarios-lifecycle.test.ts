import { scenarioTests } from "./scenarios";

scenarioTests("lifecycle");

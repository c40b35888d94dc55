/** What other parts may use from pipeline/: the serial runner (`factrl run CONFIG --serial`). */

export { describePolicy, type EvaluatedPolicy, evaluatePolicy, type PolicyEvaluation } from "./evaluate-policy.ts";
export { runSerial, SerialRunFailed, type SerialRunOptions } from "./serial-runner.ts";

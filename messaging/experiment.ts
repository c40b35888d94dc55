/**
 * Who is talking and in which experiment: every publish stamps the envelope with these, and every
 * subject and JetStream name comes from `subjects`. One per actor process.
 */
import { Context, Effect, Layer } from "effect";
import { type ExperimentSubjects, experimentSubjects, type InvalidNameError, validateToken } from "./subjects.ts";

export interface ExperimentService {
  readonly subjects: ExperimentSubjects;
  /** This process's actor id (or tool name), written into every envelope it sends. */
  readonly sender: string;
}

export class Experiment extends Context.Tag("factrl/Experiment")<Experiment, ExperimentService>() {}

/** Validates the experiment id and sender; fails with InvalidNameError saying which is wrong. */
export const ExperimentLive = (experiment: string, sender: string): Layer.Layer<Experiment, InvalidNameError> =>
  Layer.effect(
    Experiment,
    Effect.try({
      try: () => ({ subjects: experimentSubjects(experiment), sender: validateToken("sender", sender) }),
      catch: (error) => error as InvalidNameError,
    }),
  );

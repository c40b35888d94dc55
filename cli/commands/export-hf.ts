/** `factrl export-hf CHECKPOINT DIR`: a policy imported from Hugging Face (and trained here) back in their layout. */
import type { Command } from "commander";
import { Console, Data, Effect } from "effect";
import { exportHuggingFaceModel, initBackend, loadCheckpoint } from "../../models/index.ts";
import { runMain } from "../run-main.ts";

class ExportFailed extends Data.TaggedError("ExportFailed")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

export function registerExportHf(program: Command): void {
  program
    .command("export-hf")
    .description(
      "write a checkpoint of a policy that came from Hugging Face (model.init: hf:DIR) as a Hugging Face model directory",
    )
    .argument("<checkpoint>", "a factrl checkpoint directory, e.g. runs/my-experiment/learner/checkpoint")
    .argument("<dir>", "where config.json, model.safetensors, tokenizer.json and tokenizer_config.json go")
    .action((checkpoint: string, dir: string) => {
      const program = Effect.gen(function* () {
        const exported = yield* Effect.tryPromise({
          try: async () => {
            await initBackend();
            const { policy, tokenizer, step } = await loadCheckpoint(checkpoint);
            try {
              await exportHuggingFaceModel(policy, tokenizer, dir);
              return { step, parameters: policy.parameterCount() };
            } finally {
              policy.dispose();
            }
          },
          catch: (error) => new ExportFailed({ reason: error instanceof Error ? error.message : String(error) }),
        });
        yield* Console.log(
          `wrote ${dir}: step ${exported.step}, ${exported.parameters.toLocaleString("en")} parameters (float32 safetensors)`,
        );
      });
      runMain(program);
    });
}

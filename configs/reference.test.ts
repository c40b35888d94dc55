import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { configReference, DOC_FILE, withCurrentReference } from "./reference.ts";

describe("config reference", () => {
  it("lists every field with its default", () => {
    const reference = configReference();
    expect(reference).toMatch(/^\| `rollout\.groupSize` \| integer \| `8` \| G: answers sampled per prompt/m);
    expect(reference).toMatch(/^\| `nats\.auth\.token` \| string \| {2}\| \(with token\) Shared token\. \|$/m);
    expect(reference).toMatch(/^\| `rewards\.modules\[\]\.weight` \| number \|/m);
    expect(reference).toMatch(/^\| `experiment` \| string \| `required` \|/m);
  });

  it("docs/configs.md carries the current reference (regenerate: node bin/run-ts.mjs configs/reference.ts --write)", () => {
    const doc = readFileSync(DOC_FILE, "utf8");
    expect(withCurrentReference(doc)).toBe(doc);
  });
});

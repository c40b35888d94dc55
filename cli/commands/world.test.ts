/** `factrl world show`: the contact sheet a person looks at, and the errors a typo gets. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decodePng } from "../../envs/index.ts";
import { runCli, workDir } from "../../test/cli-helpers.ts";

describe("factrl world show", () => {
  it("writes a contact sheet of the entity's pictures and says what they show", async () => {
    const dir = workDir();
    const result = await runCli(["world", "show", "Pega Lelofe", "--size", "tiny"], dir);
    expect(result.stderr).toBe("");
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toBe(
      "Pega Lelofe (person, rank 1 of 31, head): 12 pictures; hair colour blond, eye colour blue, clothing colour red, accessory monocle\n" +
        "wrote pega-lelofe.png (796×268)\n",
    );
    // 12 pictures: 6 columns × 2 rows of 128-pixel cells with 4-pixel gaps.
    const sheet = decodePng(readFileSync(join(dir, "pega-lelofe.png")));
    expect([sheet.width, sheet.height]).toEqual([6 * 128 + 7 * 4, 2 * 128 + 3 * 4]);
  }, 60_000);

  it("answers a name that does not exist, or a bad option, with a usage error naming what is wrong", async () => {
    const dir = workDir();
    const [typo, size, seed] = await Promise.all([
      runCli(["world", "show", "Pega Lelof", "--size", "tiny", "--out", "x.png"], dir),
      runCli(["world", "show", "Pega Lelofe", "--size", "huge"], dir),
      runCli(["world", "show", "Pega Lelofe", "--seed", "-3"], dir),
    ]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toBe(
      'factrl: no entity named "Pega Lelof" in this world; closest names: Pega Lelofe, Bapele, Jogu Fefi, Jogu Feze, Povajo\n',
    );
    expect(size).toMatchObject({ code: 2, stderr: 'factrl: --size must be one of tiny, default, got "huge"\n' });
    expect(seed).toMatchObject({ code: 2, stderr: 'factrl: --seed must be a non-negative integer, got "-3"\n' });
  }, 60_000);
});

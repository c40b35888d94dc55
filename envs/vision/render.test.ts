import { describe, expect, it } from "vitest";
import type { Look } from "./attributes.ts";
import { DEFAULT_NUISANCE, PICTURE_SIZE, renderPicture, validatePicture } from "./render.ts";

const person: Look = { type: "person", values: { hair: "red", eyes: "blue", clothing: "green", accessory: "hat" } };
const place: Look = { type: "place", values: { building: "house", roof: "purple", weather: "sunny" } };

/** Pixels within `tolerance` per channel of a colour (the renderer's jitter and noise are ±14 and ±8). */
function count(pixels: Uint8Array, rgb: readonly [number, number, number], tolerance = 24): number {
  let n = 0;
  for (let i = 0; i < pixels.length; i += 3) {
    if (rgb.every((v, c) => Math.abs((pixels[i + c] as number) - v) <= tolerance)) n++;
  }
  return n;
}

describe("the renderer", () => {
  it("makes the same pixels from the same look and seed, and other pixels from another seed", () => {
    const a = renderPicture(person, 42);
    expect(a.width).toBe(PICTURE_SIZE);
    expect(a.pixels).toHaveLength(32 * 32 * 3);
    expect(renderPicture(person, 42).pixels).toEqual(a.pixels);
    expect(renderPicture(person, 43).pixels).not.toEqual(a.pixels);
  });

  it("shows each attribute: its paint covers pixels, and changing only it changes the picture", () => {
    const quiet = { ...DEFAULT_NUISANCE, occlusionRate: 0 };
    for (let seed = 1; seed <= 20; seed++) {
      const portrait = renderPicture(person, seed, quiet).pixels;
      expect(count(portrait, [205, 35, 35])).toBeGreaterThan(40); // red hair
      expect(count(portrait, [40, 75, 210])).toBeGreaterThan(6); // blue eyes: two 3×3 blocks, less at small scale
      expect(count(portrait, [35, 150, 55])).toBeGreaterThan(60); // green clothing
      const building = renderPicture(place, seed, quiet).pixels;
      expect(count(building, [135, 50, 170])).toBeGreaterThan(40); // purple roof
      expect(count(building, [250, 225, 50])).toBeGreaterThan(10); // the sun
    }
    const grey = renderPicture({ ...person, values: { ...person.values, hair: "grey" } }, 7, quiet).pixels;
    expect(count(grey, [205, 35, 35])).toBe(0);
    expect(count(grey, [140, 140, 140])).toBeGreaterThan(40);
  });

  it("varies position, scale and occlusion with the seed", () => {
    // The first row that holds clothing (green) moves with the subject's shift and scale.
    const first = (pixels: Uint8Array) => {
      for (let y = 0; y < 32; y++) {
        const row = pixels.subarray(y * 96, (y + 1) * 96);
        if (count(row, [35, 150, 55]) >= 4) return y;
      }
      return -1;
    };
    const rows = new Set(Array.from({ length: 30 }, (_, s) => first(renderPicture(person, s).pixels)));
    expect(rows.size).toBeGreaterThan(3);
    // An occluding block lands on a corner: some corner pixel takes one of the occluders' colours.
    const occluded = { ...DEFAULT_NUISANCE, occlusionRate: 1 };
    const corners = [0, 31, 32 * 31, 32 * 32 - 1];
    const occluderColours: [number, number, number][] = [
      [95, 90, 85],
      [150, 140, 120],
      [60, 70, 60],
    ];
    for (let seed = 1; seed <= 10; seed++) {
      const pixels = renderPicture(person, seed, occluded).pixels;
      const hit = corners.some((i) =>
        occluderColours.some((rgb) => count(pixels.subarray(i * 3, i * 3 + 3), rgb) === 1),
      );
      expect(hit).toBe(true);
    }
  });

  it("refuses a look that is not a valid look, and checks picture sizes", () => {
    expect(() =>
      renderPicture({ type: "place", values: { building: "house", roof: "pink", weather: "sunny" } }, 1),
    ).toThrow('invalid place look: roof "pink" is not one of red, blue, green, purple');
    expect(() => validatePicture({ width: 16, height: 32, pixels: new Uint8Array(16 * 32 * 3) })).toThrow(
      "picture is 16×32, expected 32×32",
    );
    expect(() => validatePicture({ width: 32, height: 32, pixels: new Uint8Array(10) })).toThrow(
      "picture has 10 bytes, expected 3072 (32×32×3)",
    );
  });
});

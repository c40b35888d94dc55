import { describe, expect, it } from "vitest";
import { contactSheet, decodePng, encodePng, enlarge } from "./png.ts";
import { renderPicture } from "./render.ts";

const look = { type: "work", values: { cover: "blue", motif: "moon" } } as const;

describe("PNG pictures", () => {
  it("encodes a picture as PNG and reads back the same pixels", () => {
    const picture = renderPicture(look, 5);
    const bytes = encodePng(picture);
    expect([...bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]); // the PNG signature
    const back = decodePng(bytes);
    expect(back).toEqual({ width: 32, height: 32, pixels: picture.pixels });
  });

  it("lays a contact sheet out as a grid of enlarged pictures on white", () => {
    const pictures = [1, 2, 3, 4, 5].map((seed) => renderPicture(look, seed));
    const sheet = contactSheet(pictures, { columns: 3, scale: 2, gap: 4 });
    expect([sheet.width, sheet.height]).toEqual([3 * 64 + 4 * 4, 2 * 64 + 3 * 4]);
    const at = (x: number, y: number) => [
      ...sheet.pixels.subarray((y * sheet.width + x) * 3, (y * sheet.width + x) * 3 + 3),
    ];
    expect(at(0, 0)).toEqual([255, 255, 255]);
    // Picture 4 (second row, second column) starts at (4 + 68, 4 + 68); its pixel (3, 5) is at twice that.
    const fifth = pictures[4]!.pixels;
    const big = enlarge(pictures[4]!, 2);
    expect(big.width).toBe(64);
    expect(at(72 + 6, 72 + 10)).toEqual(at(72 + 7, 72 + 11));
    expect(at(72 + 6, 72 + 10)).toEqual([...fifth.subarray((5 * 32 + 3) * 3, (5 * 32 + 3) * 3 + 3)]);
    // The empty sixth cell stays white.
    expect(at(4 + 2 * 68 + 30, 72 + 30)).toEqual([255, 255, 255]);
    expect(() => contactSheet([])).toThrow("a contact sheet needs at least one picture");
    expect(() => enlarge(pictures[0]!, 0)).toThrow("scale must be an integer ≥ 1, got 0");
  });
});

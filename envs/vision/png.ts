/** Pictures as PNG files for people to look at: one picture, or a contact sheet of several. */
import { PNG } from "pngjs";
import type { Picture } from "./render.ts";

/** Nearest-neighbour enlargement: 32×32 is too small to see, and blurring would invent colours. */
export function enlarge(picture: Picture, scale: number): Picture {
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`scale must be an integer ≥ 1, got ${scale}`);
  const width = picture.width * scale;
  const height = picture.height * scale;
  const pixels = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (Math.floor(y / scale) * picture.width + Math.floor(x / scale)) * 3;
      pixels.set(picture.pixels.subarray(from, from + 3), (y * width + x) * 3);
    }
  }
  return { width, height, pixels };
}

export interface ContactSheetOptions {
  /** Pictures per row (default: up to 6). */
  readonly columns?: number;
  /** Enlargement of each picture (default 4). */
  readonly scale?: number;
  /** Pixels between pictures, after enlargement (default 4). */
  readonly gap?: number;
}

/** A grid of pictures on a white ground, row by row. */
export function contactSheet(pictures: readonly Picture[], options: ContactSheetOptions = {}): Picture {
  if (pictures.length === 0) throw new Error("a contact sheet needs at least one picture");
  const scale = options.scale ?? 4;
  const gap = options.gap ?? 4;
  const columns = Math.min(options.columns ?? 6, pictures.length);
  const rows = Math.ceil(pictures.length / columns);
  const cell = enlarge(pictures[0] as Picture, scale);
  const width = columns * cell.width + (columns + 1) * gap;
  const height = rows * cell.height + (rows + 1) * gap;
  const pixels = new Uint8Array(width * height * 3).fill(255);
  pictures.forEach((picture, i) => {
    if (picture.width !== pictures[0]?.width || picture.height !== pictures[0]?.height) {
      throw new Error(`picture ${i} is ${picture.width}×${picture.height}; a contact sheet needs one size`);
    }
    const big = enlarge(picture, scale);
    const left = gap + (i % columns) * (big.width + gap);
    const top = gap + Math.floor(i / columns) * (big.height + gap);
    for (let y = 0; y < big.height; y++) {
      const row = big.pixels.subarray(y * big.width * 3, (y + 1) * big.width * 3);
      pixels.set(row, ((top + y) * width + left) * 3);
    }
  });
  return { width, height, pixels };
}

/** The picture as PNG bytes (8-bit RGB). */
export function encodePng(picture: Picture): Buffer {
  const png = new PNG({ width: picture.width, height: picture.height, colorType: 2, inputColorType: 2 });
  png.data = Buffer.from(picture.pixels.buffer, picture.pixels.byteOffset, picture.pixels.byteLength);
  return PNG.sync.write(png, { colorType: 2, inputColorType: 2 });
}

/** Reads PNG bytes back into a picture (RGB; any alpha is dropped). */
export function decodePng(bytes: Buffer): Picture {
  const png = PNG.sync.read(bytes);
  const pixels = new Uint8Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) {
    pixels[i * 3] = png.data[i * 4] as number;
    pixels[i * 3 + 1] = png.data[i * 4 + 1] as number;
    pixels[i * 3 + 2] = png.data[i * 4 + 2] as number;
  }
  return { width: png.width, height: png.height, pixels };
}

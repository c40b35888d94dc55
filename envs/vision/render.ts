/**
 * The picture renderer: a look plus a picture seed → a small RGB picture, drawn procedurally so that
 * every attribute is visible (a hair cap in the hair colour, a roof in the roof colour, …), with
 * nuisance variation drawn from the picture's seed — position, scale, colour noise, background,
 * partial occlusion — so that pictures of one entity differ the way photographs of one thing do.
 * Same look and seed → the same pixels.
 */
import { createRng, type Rng } from "../factworld/random.ts";
import { type Look, lookValue, validateLook } from "./attributes.ts";

/** Pictures are PICTURE_SIZE × PICTURE_SIZE RGB. */
export const PICTURE_SIZE = 32;

/** An RGB picture, row-major, 3 bytes per pixel (height × width × 3). */
export interface Picture {
  readonly width: number;
  readonly height: number;
  readonly pixels: Uint8Array;
}

/** Checks a picture's shape: an error naming what is wrong. */
export function validatePicture(picture: Picture, width = PICTURE_SIZE, height = PICTURE_SIZE): Picture {
  if (picture.width !== width || picture.height !== height) {
    throw new Error(`picture is ${picture.width}×${picture.height}, expected ${width}×${height}`);
  }
  if (picture.pixels.length !== width * height * 3) {
    throw new Error(
      `picture has ${picture.pixels.length} bytes, expected ${width * height * 3} (${width}×${height}×3)`,
    );
  }
  return picture;
}

type Rgb = readonly [number, number, number];
/** A region in unit coordinates (x right, y down, [0, 1]²). */
type Region = (x: number, y: number) => boolean;

/** The colour each attribute word is painted in. */
const COLOURS: Record<string, Rgb> = {
  red: [205, 35, 35],
  blue: [40, 75, 210],
  green: [35, 150, 55],
  yellow: [245, 215, 35],
  purple: [135, 50, 170],
  black: [25, 25, 25],
  brown: [115, 65, 25],
  blond: [240, 210, 120],
  grey: [140, 140, 140],
};
const colour = (word: string): Rgb => {
  const rgb = COLOURS[word];
  if (rgb === undefined) throw new Error(`no paint for "${word}"`);
  return rgb;
};

// Regions.
const rect =
  (x0: number, y0: number, x1: number, y1: number): Region =>
  (x, y) =>
    x >= x0 && x < x1 && y >= y0 && y < y1;
const ellipse =
  (cx: number, cy: number, rx: number, ry: number): Region =>
  (x, y) =>
    ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1;
const disk = (cx: number, cy: number, r: number): Region => ellipse(cx, cy, r, r);
const and =
  (...regions: Region[]): Region =>
  (x, y) =>
    regions.every((r) => r(x, y));
const or =
  (...regions: Region[]): Region =>
  (x, y) =>
    regions.some((r) => r(x, y));
const not =
  (region: Region): Region =>
  (x, y) =>
    !region(x, y);
/** Even–odd rule polygon. */
const polygon =
  (points: readonly (readonly [number, number])[]): Region =>
  (x, y) => {
    let inside = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i] as readonly [number, number];
      const [xj, yj] = points[j] as readonly [number, number];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
const star = (cx: number, cy: number, outer: number, inner: number): Region =>
  polygon(
    Array.from({ length: 10 }, (_, k) => {
      const r = k % 2 === 0 ? outer : inner;
      const angle = -Math.PI / 2 + (k * Math.PI) / 5;
      return [cx + r * Math.cos(angle), cy + r * Math.sin(angle)] as const;
    }),
  );
const crescent = (cx: number, cy: number, r: number): Region =>
  and(disk(cx, cy, r), not(disk(cx + 0.45 * r, cy - 0.2 * r, 0.85 * r)));

/** A painted region; `object` regions move and scale with the picture's subject, `scene` ones stay put. */
interface Layer {
  readonly region: Region;
  readonly rgb: Rgb;
  readonly space: "scene" | "object";
}

/** Draws a picture's subject: the layers, front last. */
type Painter = (look: Look, rng: Rng) => Layer[];

const scene = (region: Region, rgb: Rgb): Layer => ({ region, rgb, space: "scene" });
const object = (region: Region, rgb: Rgb): Layer => ({ region, rgb, space: "object" });

// Light enough that brown eyes and brown or grey hair stand out against every tone.
const SKIN: readonly Rgb[] = [
  [245, 210, 185],
  [230, 180, 145],
  [200, 150, 115],
];
const PORTRAIT_BACKGROUNDS: readonly Rgb[] = [
  [200, 215, 225],
  [225, 215, 195],
  [205, 225, 205],
];
const GOLD: Rgb = [235, 190, 40];
const WHITE: Rgb = [245, 245, 245];

const paintPerson: Painter = (look, rng) => {
  const skin = rng.pick(SKIN);
  const hair = colour(lookValue(look, "hair"));
  const head = ellipse(0.5, 0.38, 0.25, 0.27);
  const layers = [
    scene(rect(0, 0, 1, 1), rng.pick(PORTRAIT_BACKGROUNDS)),
    object(head, hair),
    object(rect(0.2, 0.74, 0.8, 1.2), colour(lookValue(look, "clothing"))),
    object(rect(0.44, 0.58, 0.56, 0.75), skin),
    object(ellipse(0.5, 0.44, 0.18, 0.2), skin),
    // The fringe: hair over the top of the face.
    object(and(head, rect(0, 0, 1, 0.31)), hair),
    object(rect(0.34, 0.38, 0.46, 0.5), colour(lookValue(look, "eyes"))),
    object(rect(0.54, 0.38, 0.66, 0.5), colour(lookValue(look, "eyes"))),
    object(rect(0.45, 0.54, 0.55, 0.57), [150, 40, 40]),
  ];
  switch (lookValue(look, "accessory")) {
    case "hat":
      layers.push(object(or(rect(0.2, 0.14, 0.8, 0.19), rect(0.32, -0.1, 0.68, 0.15)), [60, 50, 45]));
      break;
    case "scarf":
      layers.push(
        object(
          and(rect(0.3, 0.64, 0.7, 0.76), (x) => Math.floor(x * 16) % 2 === 0),
          WHITE,
        ),
        object(
          and(rect(0.3, 0.64, 0.7, 0.76), (x) => Math.floor(x * 16) % 2 === 1),
          [20, 120, 120],
        ),
      );
      break;
    case "monocle":
      layers.push(
        object(or(and(disk(0.585, 0.44, 0.1), not(disk(0.585, 0.44, 0.065))), rect(0.67, 0.44, 0.7, 0.72)), GOLD),
      );
      break;
    case "flower":
      layers.push(object(disk(0.27, 0.2, 0.1), [235, 70, 180]), object(disk(0.27, 0.2, 0.04), [250, 230, 60]));
      break;
  }
  return layers;
};

const SKIES: Record<string, Rgb> = {
  sunny: [125, 190, 245],
  rainy: [115, 120, 130],
  snowy: [150, 160, 185],
  night: [20, 25, 60],
};
const WALLS: readonly Rgb[] = [
  [225, 210, 170],
  [175, 170, 165],
  [195, 150, 110],
];

/** Scattered single pixels (stars, snowflakes): a hash of the pixel, so the pattern differs per picture. */
const sprinkle = (x: number, y: number, salt: number, density: number): boolean => {
  let h =
    Math.imul(Math.floor(x * PICTURE_SIZE) + 1, 0x9e3779b1) ^ Math.imul(Math.floor(y * PICTURE_SIZE) + 1, 0x85ebca6b);
  h = Math.imul(h ^ salt ^ (h >>> 15), 0x2c1b3c6d);
  return ((h ^ (h >>> 13)) >>> 0) / 4294967296 < density;
};

const paintPlace: Painter = (look, rng) => {
  const weather = lookValue(look, "weather");
  const sky = SKIES[weather] as Rgb;
  const layers: Layer[] = [scene(rect(0, 0, 1, 1), sky)];
  const side = rng.chance(0.5) ? 0.17 : 0.83;
  if (weather === "sunny") layers.push(scene(disk(side, 0.15, 0.1), [250, 225, 50]));
  if (weather === "night") {
    layers.push(scene(crescent(side, 0.15, 0.09), [245, 240, 190]));
    const salt = rng.int(0, 1 << 20);
    layers.push(scene((x, y) => y < 0.5 && sprinkle(x, y, salt, 0.06), WHITE));
  }
  if (weather === "rainy") {
    const phase = rng.next();
    const rain = (x: number, y: number) => ((x + 0.4 * y + phase) * 8) % 1 < 0.14 && (y * 5) % 1 < 0.6;
    layers.push(scene(rain, [60, 95, 215]));
  }
  const ground: Rgb = weather === "snowy" ? [240, 240, 245] : rng.pick([[75, 140, 60] as Rgb, [120, 100, 70] as Rgb]);
  layers.push(scene(rect(0, 0.84, 1, 1), ground));

  const walls = rng.pick(WALLS);
  const roof = colour(lookValue(look, "roof"));
  const door: Rgb = [70, 45, 30];
  switch (lookValue(look, "building")) {
    case "house":
      // A wide, low gable with a chimney and two windows: nothing like the dome's round roof.
      layers.push(
        object(rect(0.62, 0.28, 0.7, 0.44), [80, 70, 70]),
        object(rect(0.24, 0.52, 0.76, 0.86), walls),
        object(
          polygon([
            [0.5, 0.26],
            [0.86, 0.54],
            [0.14, 0.54],
          ]),
          roof,
        ),
        object(rect(0.45, 0.7, 0.55, 0.86), door),
        object(or(rect(0.3, 0.6, 0.38, 0.68), rect(0.62, 0.6, 0.7, 0.68)), [250, 240, 170]),
      );
      break;
    case "tower":
      layers.push(
        object(rect(0.4, 0.32, 0.6, 0.86), walls),
        object(
          polygon([
            [0.5, 0.02],
            [0.66, 0.34],
            [0.34, 0.34],
          ]),
          roof,
        ),
        object(rect(0.46, 0.45, 0.54, 0.53), door),
      );
      break;
    case "castle":
      layers.push(
        object(rect(0.16, 0.46, 0.84, 0.86), walls),
        object(
          or(
            rect(0.16, 0.4, 0.84, 0.47),
            and(rect(0.16, 0.3, 0.84, 0.4), (x) => Math.floor((x - 0.16) * 12.5) % 2 === 0),
          ),
          roof,
        ),
        object(and(rect(0.42, 0.64, 0.58, 0.86), not(and(rect(0, 0, 1, 0.7), not(disk(0.5, 0.7, 0.08))))), door),
      );
      break;
    case "dome":
      // A tall round dome on a colonnade, with a spire and a ball on top.
      layers.push(
        object(rect(0.3, 0.55, 0.7, 0.86), walls),
        object(
          and(rect(0.3, 0.6, 0.7, 0.86), (x) => Math.floor((x - 0.3) * 20) % 2 === 1),
          [90, 80, 75],
        ),
        object(and(ellipse(0.5, 0.56, 0.22, 0.28), rect(0, 0, 1, 0.56)), roof),
        object(rect(0.47, 0.2, 0.53, 0.32), roof),
        object(disk(0.5, 0.17, 0.045), roof),
      );
      break;
  }
  if (weather === "snowy") {
    const salt = rng.int(0, 1 << 20);
    layers.push(scene((x, y) => sprinkle(x, y, salt, 0.1), WHITE));
  }
  return layers;
};

const CARDS: readonly Rgb[] = [
  [245, 243, 235],
  [220, 222, 225],
  [240, 230, 205],
];

const paintOrganisation: Painter = (look, rng) => {
  const rgb = colour(lookValue(look, "logo_colour"));
  const shapes: Record<string, Region> = {
    circle: disk(0.5, 0.45, 0.28),
    square: rect(0.24, 0.19, 0.76, 0.71),
    triangle: polygon([
      [0.5, 0.14],
      [0.8, 0.72],
      [0.2, 0.72],
    ]),
    diamond: polygon([
      [0.5, 0.12],
      [0.8, 0.45],
      [0.5, 0.78],
      [0.2, 0.45],
    ]),
    cross: or(rect(0.4, 0.15, 0.6, 0.75), rect(0.2, 0.35, 0.8, 0.55)),
    ring: and(disk(0.5, 0.45, 0.29), not(disk(0.5, 0.45, 0.16))),
  };
  const textBars = (x: number, y: number) =>
    y >= 0.84 && y < 0.9 && x >= 0.2 && x < 0.8 && Math.floor(x * 20) % 4 !== 3;
  return [
    scene(rect(0, 0, 1, 1), rng.pick(CARDS)),
    object(shapes[lookValue(look, "logo_shape")] as Region, rgb),
    object(textBars, [90, 90, 95]),
  ];
};

const TABLES: readonly Rgb[] = [
  [160, 120, 80],
  [190, 185, 175],
  [110, 85, 60],
];

const paintWork: Painter = (look, rng) => {
  const cover = colour(lookValue(look, "cover"));
  const ink = rng.chance(0.5) ? GOLD : WHITE;
  const c = { x: 0.52, y: 0.42 };
  const motifs: Record<string, Region> = {
    star: star(c.x, c.y, 0.2, 0.085),
    moon: crescent(c.x - 0.03, c.y, 0.19),
    // A round crown on a long trunk, so that it shares no pointed outline with the star.
    tree: or(disk(c.x, c.y - 0.06, 0.14), rect(c.x - 0.04, c.y + 0.05, c.x + 0.04, c.y + 0.22)),
    wave: (x, y) => {
      if (x < 0.32 || x > 0.72) return false;
      const crest = c.y + 0.06 * Math.sin((x - 0.32) * 16);
      return Math.abs(y - crest + 0.08) < 0.035 || Math.abs(y - crest - 0.08) < 0.035;
    },
    key: or(
      and(disk(c.x - 0.12, c.y, 0.09), not(disk(c.x - 0.12, c.y, 0.04))),
      rect(c.x - 0.04, c.y - 0.035, c.x + 0.2, c.y + 0.035),
      rect(c.x + 0.08, c.y, c.x + 0.12, c.y + 0.09),
      rect(c.x + 0.15, c.y, c.x + 0.19, c.y + 0.07),
    ),
  };
  const shade = cover.map((v) => Math.round(v * 0.6)) as unknown as Rgb;
  return [
    scene(rect(0, 0, 1, 1), rng.pick(TABLES)),
    object(rect(0.22, 0.08, 0.82, 0.92), cover),
    object(rect(0.22, 0.08, 0.28, 0.92), shade),
    object(motifs[lookValue(look, "motif")] as Region, ink),
    object(rect(0.36, 0.74, 0.68, 0.78), ink),
  ];
};

const PAINTERS: Record<Look["type"], Painter> = {
  person: paintPerson,
  place: paintPlace,
  organisation: paintOrganisation,
  work: paintWork,
};

/** How far nuisance variation goes (in units of the picture's side, or colour levels 0–255). */
export interface NuisanceOptions {
  /** Largest shift of the subject, each axis. */
  readonly shift: number;
  /** The subject's scale is drawn from [minScale, maxScale]. */
  readonly minScale: number;
  readonly maxScale: number;
  /** Largest change of each region's colour, per channel. */
  readonly colourJitter: number;
  /** Largest per-pixel noise, per channel. */
  readonly pixelNoise: number;
  /** Chance that a block hides part of the picture (at an edge, never the whole of any attribute). */
  readonly occlusionRate: number;
}

export const DEFAULT_NUISANCE: NuisanceOptions = {
  shift: 0.08,
  minScale: 0.88,
  maxScale: 1.08,
  colourJitter: 14,
  pixelNoise: 8,
  occlusionRate: 0.3,
};

const OCCLUDERS: readonly Rgb[] = [
  [95, 90, 85],
  [150, 140, 120],
  [60, 70, 60],
];

/** Renders one picture of a look; everything that varies is drawn from `seed`. */
export function renderPicture(look: Look, seed: number, nuisance: NuisanceOptions = DEFAULT_NUISANCE): Picture {
  validateLook(look);
  const rng = createRng(seed);
  const dx = (rng.next() * 2 - 1) * nuisance.shift;
  const dy = (rng.next() * 2 - 1) * nuisance.shift;
  const scale = nuisance.minScale + rng.next() * (nuisance.maxScale - nuisance.minScale);
  const layers = PAINTERS[look.type](look, rng);
  if (rng.chance(nuisance.occlusionRate)) {
    // A block over one corner, at most a fifth of the side each way: it hides part of the subject only.
    const w = 0.12 + rng.next() * 0.1;
    const h = 0.12 + rng.next() * 0.1;
    const x0 = rng.chance(0.5) ? 0 : 1 - w;
    const y0 = rng.chance(0.5) ? 0 : 1 - h;
    layers.push(scene(rect(x0, y0, x0 + w, y0 + h), rng.pick(OCCLUDERS)));
  }
  const jitter = () => Math.round((rng.next() * 2 - 1) * nuisance.colourJitter);
  const colours = layers.map((layer) => layer.rgb.map((v) => v + jitter()));

  const size = PICTURE_SIZE;
  const pixels = new Uint8Array(size * size * 3);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      const x = (px + 0.5) / size;
      const y = (py + 0.5) / size;
      const u = (x - 0.5 - dx) / scale + 0.5;
      const v = (y - 0.5 - dy) / scale + 0.5;
      let top = -1;
      for (let k = layers.length - 1; k >= 0 && top < 0; k--) {
        const layer = layers[k] as Layer;
        if (layer.space === "scene" ? layer.region(x, y) : layer.region(u, v)) top = k;
      }
      const rgb = colours[top] as number[];
      const at = (py * size + px) * 3;
      for (let c = 0; c < 3; c++) {
        const noise = Math.round((rng.next() * 2 - 1) * nuisance.pixelNoise);
        pixels[at + c] = Math.min(255, Math.max(0, (rgb[c] as number) + noise));
      }
    }
  }
  return { width: size, height: size, pixels };
}

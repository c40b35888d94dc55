import { describe, expect, it } from "vitest";
import { parseSvg, seriesPoints } from "../test/svg-reader.ts";
import { lineChartSvg, niceTicks } from "./svg-chart.ts";

describe("niceTicks", () => {
  it("gives round steps covering the range", () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 40)).toEqual([10, 20, 30, 40]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
});

describe("lineChartSvg", () => {
  const svg = lineChartSvg({
    title: "Reward <train> & terms",
    xLabel: "step",
    yLabel: "value",
    width: 400,
    height: 200,
    series: [
      {
        name: "reward",
        points: [
          [1, 0],
          [2, 0.5],
          [3, 1],
          [4, Number.NaN],
        ],
      },
      { name: "precision", points: [[2, 0.25]] },
      { name: "empty", points: [] },
    ],
  });
  const elements = parseSvg(svg);

  it("is a well-formed SVG document with its title escaped", () => {
    expect(elements[0]).toMatchObject({ name: "svg", attributes: { xmlns: "http://www.w3.org/2000/svg" } });
    expect(elements.some((e) => e.name === "text" && e.text === "Reward &lt;train&gt; &amp; terms")).toBe(true);
  });

  it("draws every finite point of every series, in order, inside the plot area", () => {
    const points = seriesPoints(elements);
    expect([...points.keys()]).toEqual(["reward", "precision"]);
    const reward = points.get("reward")!;
    expect(reward).toHaveLength(3);
    // x grows left to right; y = 1 is above y = 0 (SVG's y points down).
    expect(reward[0]![0]).toBeLessThan(reward[1]![0]!);
    expect(reward[2]![1]).toBeLessThan(reward[0]![1]!);
    // Equal steps in data are equal steps on screen.
    expect(reward[1]![0]! - reward[0]![0]!).toBeCloseTo(reward[2]![0]! - reward[1]![0]!, 1);
    expect(reward[1]![1]! - reward[0]![1]!).toBeCloseTo(reward[2]![1]! - reward[1]![1]!, 1);
    const frame = elements.find((e) => e.name === "rect" && e.attributes.width !== "400")!.attributes;
    for (const [x, y] of [...reward, ...points.get("precision")!]) {
      expect(x).toBeGreaterThanOrEqual(Number(frame.x));
      expect(x).toBeLessThanOrEqual(Number(frame.x) + Number(frame.width));
      expect(y).toBeGreaterThanOrEqual(Number(frame.y));
      expect(y).toBeLessThanOrEqual(Number(frame.y) + Number(frame.height));
    }
  });

  it("lists every series in the legend, even one with nothing to draw", () => {
    const legend = elements.filter((e) => e.name === "text" && ["reward", "precision", "empty"].includes(e.text));
    expect(legend.map((e) => e.text)).toEqual(["reward", "precision", "empty"]);
  });

  it("checks bite: the reader refuses a tag left open", () => {
    expect(() => parseSvg(svg.replace("</svg>", ""))).toThrow(/unclosed: svg/);
  });
});

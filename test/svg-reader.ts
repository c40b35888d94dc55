/** Reading the SVG charts back in tests (dashboard/svg-chart.ts): elements, attributes, the series' points. */

export interface SvgElement {
  readonly name: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly text: string;
}

/**
 * A strict little XML reader for the charts' SVG: every tag must close in order (else it throws),
 * and each element comes back with its attributes and direct text.
 */
export function parseSvg(svg: string): SvgElement[] {
  const elements: { name: string; attributes: Record<string, string>; text: string }[] = [];
  const open: { name: string; attributes: Record<string, string>; text: string }[] = [];
  const TOKEN = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g;
  let consumed = 0;
  for (const m of svg.matchAll(TOKEN)) {
    if (m.index !== consumed) throw new Error(`unreadable SVG at ${consumed}: ${svg.slice(consumed, consumed + 40)}`);
    consumed = m.index + m[0].length;
    const [, closing, name, attrs, selfClosing, text] = m;
    if (text !== undefined) {
      if (open.length === 0 && text.trim() !== "") throw new Error(`text outside the root: ${text}`);
      if (open.length > 0) open.at(-1)!.text += text;
      continue;
    }
    if (closing) {
      const top = open.pop();
      if (top?.name !== name) throw new Error(`</${name}> closes <${top?.name}>`);
      continue;
    }
    const attributes = Object.fromEntries(
      [...(attrs ?? "").matchAll(/([\w:-]+)="([^"]*)"/g)].map((a) => [a[1]!, a[2]!]),
    );
    const element = { name: name!, attributes, text: "" };
    elements.push(element);
    if (!selfClosing) open.push(element);
  }
  if (consumed !== svg.length || open.length > 0) throw new Error(`unclosed: ${open.map((e) => e.name).join(", ")}`);
  return elements;
}

/** The [x, y] screen points of each series, by name. */
export const seriesPoints = (elements: readonly SvgElement[]) =>
  new Map(
    elements
      .filter((e) => e.attributes.class === "series")
      .map((e) => [
        e.attributes["data-name"]!,
        e.name === "circle"
          ? [[Number(e.attributes.cx), Number(e.attributes.cy)]]
          : e.attributes.points!.split(" ").map((p) => p.split(",").map(Number)),
      ]),
  );

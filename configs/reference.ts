/**
 * The config reference (every field: path, type, default, description) generated from the schema
 * itself, so docs/configs.md cannot drift from it (configs/reference.test.ts checks).
 * Print it: `node bin/run-ts.mjs configs/reference.ts`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Option, Schema, SchemaAST } from "effect";
import { ExperimentConfig } from "./schema.ts";

interface Row {
  readonly path: string;
  readonly type: string;
  readonly defaultValue: string;
  readonly description: string;
}

const describeType = (ast: SchemaAST.AST): string => {
  switch (ast._tag) {
    case "Refinement":
      return SchemaAST.getIdentifierAnnotation(ast).pipe(Option.getOrElse(() => describeType(ast.from)));
    case "Transformation":
      return describeType(ast.to);
    case "Literal":
      return JSON.stringify(ast.literal);
    case "Union":
      return ast.types.map(describeType).join(" | ");
    case "NumberKeyword":
      return "number";
    case "StringKeyword":
      return "string";
    case "BooleanKeyword":
      return "boolean";
    case "TupleType":
      return `list of ${ast.rest.map((element) => describeType(element.type)).join("")}`;
    case "TypeLiteral":
      return ast.indexSignatures.length > 0 ? "mapping" : "section";
    default:
      return String(ast);
  }
};

/** Int refinements read better as "integer" than as "number". */
const leafType = (ast: SchemaAST.AST): string => {
  if (ast._tag === "Union") return ast.types.map(leafType).join(" | ");
  const text = String(ast);
  if (/\bInt\b/.test(text)) return "integer";
  return describeType(ast);
};

const structOf = (ast: SchemaAST.AST): SchemaAST.TypeLiteral | undefined => {
  if (ast._tag === "TypeLiteral" && ast.indexSignatures.length === 0) return ast;
  if (ast._tag === "Refinement") return structOf(ast.from);
  if (ast._tag === "Transformation") return structOf(ast.to);
  return undefined;
};

/** A struct, or a union of structs: the alternatives a mapping may take. */
const structAlternatives = (ast: SchemaAST.AST): SchemaAST.TypeLiteral[] | undefined => {
  const members = ast._tag === "Union" ? ast.types.map(structOf) : [structOf(ast)];
  return members.every((member) => member !== undefined) ? (members as SchemaAST.TypeLiteral[]) : undefined;
};

const keysOf = (struct: SchemaAST.TypeLiteral) => struct.propertySignatures.map((p) => String(p.name));

/**
 * Union members: each one's own fields, marked with what tells the member apart (its literal tag,
 * `kind: jsonl`, or its own keys), then the fields every member shares, once.
 */
function walkAlternatives(members: readonly SchemaAST.TypeLiteral[], path: string[], rows: Row[]): void {
  const isTag = (key: string) =>
    members.some((member) => member.propertySignatures.find((p) => String(p.name) === key)?.type._tag === "Literal");
  const shared = keysOf(members[0]!).filter(
    (key) => !isTag(key) && members.every((member) => keysOf(member).includes(key)),
  );
  const isShared = (key: string) => shared.includes(key) && members.length > 1;
  for (const member of members) {
    const tag = member.propertySignatures.find((p) => p.type._tag === "Literal");
    const label =
      tag !== undefined && tag.type._tag === "Literal"
        ? `${String(tag.name)}: ${String(tag.type.literal)}`
        : `with ${keysOf(member)
            .filter((key) => !isShared(key))
            .join(", ")}`;
    walk(member, path, undefined, `(${label}) `, rows, (key) => !isShared(key));
  }
  if (members.length > 1) walk(members[0]!, path, undefined, "", rows, isShared);
}

const lookup = (value: unknown, path: readonly string[]): unknown =>
  path.reduce<unknown>(
    (current, key) => (typeof current === "object" && current !== null ? (current as never)[key] : undefined),
    value,
  );

const description = (property: SchemaAST.PropertySignature): string =>
  SchemaAST.getDescriptionAnnotation(property).pipe(
    Option.orElse(() => SchemaAST.getDescriptionAnnotation(property.type)),
    Option.getOrElse(() => ""),
  );

function walk(
  struct: SchemaAST.TypeLiteral,
  prefix: string[],
  defaults: unknown,
  note: string,
  rows: Row[],
  only: (key: string) => boolean = () => true,
): void {
  for (const property of struct.propertySignatures.filter((p) => only(String(p.name)))) {
    const path = [...prefix, String(property.name)];
    const type =
      property.type._tag === "Union" && property.isOptional
        ? SchemaAST.Union.make(property.type.types.filter((t) => t._tag !== "UndefinedKeyword"))
        : property.type;
    const text = `${note}${description(property)}`;
    const nested = structOf(type);
    if (nested !== undefined) {
      rows.push({ path: path.join("."), type: "section", defaultValue: "", description: text });
      walk(nested, path, defaults, "", rows);
      continue;
    }
    const alternatives = structAlternatives(type);
    if (alternatives !== undefined) {
      rows.push({ path: path.join("."), type: "one of", defaultValue: "", description: text });
      walkAlternatives(alternatives, path, rows);
      continue;
    }
    const items = type._tag === "TupleType" ? structAlternatives(type.rest[0]?.type ?? type) : undefined;
    if (items !== undefined) {
      const fallback = lookup(defaults, path);
      rows.push({
        path: path.join("."),
        type: "list",
        defaultValue: fallback === undefined ? "" : JSON.stringify(fallback),
        description: text,
      });
      walkAlternatives(items, [...path.slice(0, -1), `${path.at(-1)}[]`], rows);
      continue;
    }
    const fallback = lookup(defaults, path);
    rows.push({
      path: path.join("."),
      type: leafType(type),
      defaultValue:
        defaults === undefined
          ? ""
          : fallback === undefined
            ? property.isOptional
              ? "unset"
              : "required"
            : JSON.stringify(fallback),
      description: text,
    });
  }
}

/** The reference as a Markdown table. */
export function configReference(): string {
  // Sections unset by default (their absence means "off") are decoded empty, so their fields show their defaults.
  const defaults = Schema.decodeUnknownSync(ExperimentConfig)({ experiment: "example", rollout: { retrieval: {} } });
  const rows: Row[] = [];
  walk(structOf(ExperimentConfig.ast)!, [], { ...defaults, experiment: undefined }, "", rows);
  const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [
    "| key | type | default | meaning |",
    "|---|---|---|---|",
    ...rows.map(
      (row) =>
        `| \`${row.path}\` | ${cell(row.type)} | ${row.defaultValue && `\`${cell(row.defaultValue)}\``} | ${cell(row.description)} |`,
    ),
  ].join("\n");
}

const BEGIN = "<!-- config-reference:begin (generated: node bin/run-ts.mjs configs/reference.ts --write) -->";
const END = "<!-- config-reference:end -->";
export const DOC_FILE = resolve(import.meta.dirname, "../docs/configs.md");

/** docs/configs.md with its generated reference section replaced by the current one. */
export function withCurrentReference(doc: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${DOC_FILE} has no ${BEGIN} … ${END} section`);
  return `${doc.slice(0, start + BEGIN.length)}\n${configReference()}\n${doc.slice(end)}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  if (process.argv.includes("--write")) writeFileSync(DOC_FILE, withCurrentReference(readFileSync(DOC_FILE, "utf8")));
  else console.log(configReference());
}

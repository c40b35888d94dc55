/**
 * Reading experiment configs: YAML files composed with `extends:`, overridden with `--set a.b=c`,
 * then decoded by the schema with every problem reported at once (path, what was expected, what was
 * found). Nothing starts until the config is valid.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Data, Effect, Either, ParseResult, Schema, SchemaAST } from "effect";
import YAML from "yaml";
import { ExperimentConfig, ModelSection } from "./schema.ts";

export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** Where the problems were found (a file, or "--set"). */
  readonly source: string;
  /** One line per problem, each starting with the offending path. */
  readonly problems: readonly string[];
}> {
  override get message(): string {
    const noun = this.problems.length === 1 ? "problem" : "problems";
    return `invalid config (${this.source}), ${this.problems.length} ${noun}:\n${this.problems.map((p) => `  - ${p}`).join("\n")}`;
  }
}

type Raw = Record<string, unknown>;
type Path = readonly (string | number)[];

const isMapping = (value: unknown): value is Raw =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** `a.b[0].c` — the way paths are printed in problems and accepted by `--set`. */
export const formatPath = (path: Path): string =>
  path.reduce<string>((text, key) => (typeof key === "number" ? `${text}[${key}]` : text ? `${text}.${key}` : key), "");

// ── YAML files and `extends:` ────────────────────────────────────────────────────────────────────

/**
 * Deep merge where `override` wins: mappings merge key by key, everything else (lists included) is
 * replaced, a mapping with another `kind` replaces the base's whole, and `null` removes the key so the
 * default applies again.
 */
export function mergeConfigs(base: Raw, override: Raw): Raw {
  const merged: Raw = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = merged[key];
    if (value === null) delete merged[key];
    // A mapping of another `kind` (env: factworld → jsonl) replaces the base's: their fields do not mix.
    else if (isMapping(value) && isMapping(current) && (value.kind === undefined || value.kind === current.kind))
      merged[key] = mergeConfigs(current, value);
    else merged[key] = value;
  }
  return merged;
}

function readYamlMapping(file: string): Raw {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError({ source: file, problems: [`cannot read the file: ${(error as Error).message}`] });
  }
  const document = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError({ source: file, problems: document.errors.map((e) => `YAML: ${e.message}`) });
  }
  const value: unknown = document.toJS();
  if (value === null || value === undefined) return {};
  if (!isMapping(value)) {
    throw new ConfigError({
      source: file,
      problems: [`expected a mapping at the top level, found ${describe(value)}`],
    });
  }
  return value;
}

/** A config file with its `extends:` chain resolved (each path relative to the file naming it). */
export function readConfigFile(file: string, chain: readonly string[] = []): Raw {
  const path = resolve(file);
  if (chain.includes(path)) {
    throw new ConfigError({ source: path, problems: [`extends cycle: ${[...chain, path].join(" → ")}`] });
  }
  // Merging into {} drops `key: null` everywhere, so an emptied key means "the default" in every file.
  const { extends: parent, ...own } = mergeConfigs({}, readYamlMapping(path));
  if (parent === undefined) return own;
  if (typeof parent !== "string" || parent === "") {
    throw new ConfigError({ source: path, problems: [`extends: expected a file path, found ${describe(parent)}`] });
  }
  return mergeConfigs(readConfigFile(resolve(dirname(path), parent), [...chain, path]), own);
}

// ── `--set a.b=c` ────────────────────────────────────────────────────────────────────────────────

export interface Setting {
  readonly path: Path;
  readonly value: unknown;
}

/** Parses `a.b[0].c=value`; the value is read as YAML (`8` is a number, `true` a boolean, `null` unsets). */
export function parseSetting(text: string): Setting {
  const eq = text.indexOf("=");
  const key = eq < 0 ? "" : text.slice(0, eq).trim();
  if (!key) throw new ConfigError({ source: "--set", problems: [`expected key=value, found ${JSON.stringify(text)}`] });
  const path = key
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  if (path.some((part) => part === "")) {
    throw new ConfigError({ source: "--set", problems: [`${key}: malformed path`] });
  }
  let value: unknown;
  try {
    value = YAML.parse(text.slice(eq + 1));
  } catch (error) {
    throw new ConfigError({
      source: "--set",
      problems: [`${key}: cannot read the value: ${(error as Error).message}`],
    });
  }
  return { path, value: value === undefined ? null : value };
}

/** The schema nodes a key can lead to from `ast` (several when a union offers it in several members). */
function children(ast: SchemaAST.AST, key: string | number): SchemaAST.AST[] {
  switch (ast._tag) {
    case "Transformation":
      return children(ast.from, key);
    case "Refinement":
      return children(ast.from, key);
    case "Suspend":
      return children(ast.f(), key);
    case "Union":
      return ast.types.flatMap((member) => children(member, key));
    case "TypeLiteral": {
      const property = ast.propertySignatures.find((p) => p.name === key);
      if (property) return [property.type];
      return ast.indexSignatures.filter(() => typeof key === "string").map((index) => index.type);
    }
    case "TupleType":
      return typeof key === "number" ? ast.rest.map((element) => element.type) : [];
    case "UnknownKeyword":
    case "AnyKeyword":
      return [ast];
    default:
      return [];
  }
}

/** The keys a mapping at this node may have, for "did you mean" lists. */
function keysOf(ast: SchemaAST.AST): string[] {
  switch (ast._tag) {
    case "Transformation":
    case "Refinement":
      return keysOf(ast.from);
    case "Suspend":
      return keysOf(ast.f());
    case "Union":
      return [...new Set(ast.types.flatMap(keysOf))];
    case "TypeLiteral":
      return ast.propertySignatures.map((p) => String(p.name));
    default:
      return [];
  }
}

/** Why the schema has no setting at `path`, or undefined when it has one. */
function missingSetting(path: Path): string | undefined {
  let nodes: SchemaAST.AST[] = [ExperimentConfig.ast];
  for (let i = 0; i < path.length; i++) {
    const key = path[i]!;
    const next = nodes.flatMap((node) => children(node, key));
    if (next.length === 0) {
      const here = formatPath(path.slice(0, i));
      const keys = [...new Set(nodes.flatMap(keysOf))];
      const hint = keys.length > 0 ? ` (${here || "the top level"} has: ${keys.join(", ")})` : "";
      return `${formatPath(path)}: no such setting${hint}`;
    }
    nodes = next;
  }
  return undefined;
}

/** Returns `raw` with the setting applied (a copy; `null` removes the key so the default applies). */
export function applySetting(raw: Raw, setting: Setting): Raw {
  const missing = missingSetting(setting.path);
  if (missing) throw new ConfigError({ source: "--set", problems: [missing] });
  const put = (container: unknown, depth: number): unknown => {
    const key = setting.path[depth]!;
    const last = depth === setting.path.length - 1;
    if (typeof key === "number") {
      if (!Array.isArray(container) || key > container.length) {
        const listPath = formatPath(setting.path.slice(0, depth));
        throw new ConfigError({
          source: "--set",
          problems: [
            `${formatPath(setting.path)}: ${listPath} has no item ${key} in the config files; set the whole list ` +
              `instead, e.g. --set '${listPath}=[…]'`,
          ],
        });
      }
      const copy = [...container];
      if (last && setting.value === null) copy.splice(key, 1);
      else copy[key] = last ? setting.value : put(copy[key], depth + 1);
      return copy;
    }
    const copy: Raw = isMapping(container) ? { ...container } : {};
    if (last && setting.value === null) delete copy[key];
    else copy[key] = last ? setting.value : put(copy[key], depth + 1);
    return copy;
  };
  return put(raw, 0) as Raw;
}

// ── decoding and reporting ───────────────────────────────────────────────────────────────────────

function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

const EXPECTED_ACTUAL = /^Expected (.*), actual (.*)$/s;
const UNEXPECTED = /^is unexpected, expected: (.*)$/s;

const leafCount = (issue: ParseResult.ParseIssue): number => ParseResult.ArrayFormatter.formatIssueSync(issue).length;

/**
 * Effect reports a failed union once per member. For a config that is noise: an optional field's
 * `undefined` alternative is dropped, the member that came closest (fewest problems) is kept, and
 * when no member stands out the union is reported as one "expected A | B, found C".
 */
function pruneUnions(issue: ParseResult.ParseIssue): ParseResult.ParseIssue {
  switch (issue._tag) {
    case "Pointer":
      return new ParseResult.Pointer(issue.path, issue.actual, pruneUnions(issue.issue));
    case "Refinement":
      return new ParseResult.Refinement(issue.ast, issue.actual, issue.kind, pruneUnions(issue.issue));
    case "Transformation":
      return new ParseResult.Transformation(issue.ast, issue.actual, issue.kind, pruneUnions(issue.issue));
    case "Composite": {
      const members = (Array.isArray(issue.issues) ? issue.issues : [issue.issues]) as ParseResult.ParseIssue[];
      if (issue.ast._tag !== "Union") {
        const pruned = members.map(pruneUnions) as [ParseResult.ParseIssue, ...ParseResult.ParseIssue[]];
        return new ParseResult.Composite(issue.ast, issue.actual, pruned, issue.output);
      }
      const candidates = members
        .filter((member) => !(member._tag === "Type" && member.ast._tag === "UndefinedKeyword"))
        .map(pruneUnions);
      if (candidates.length === 1) return candidates[0]!;
      const counts = candidates.map(leafCount);
      const fewest = Math.min(...counts);
      if (counts.filter((n) => n === fewest).length === 1) return candidates[counts.indexOf(fewest)]!;
      const alternatives = issue.ast.types.filter((member) => member._tag !== "UndefinedKeyword");
      const expected =
        alternatives.length === 1
          ? SchemaAST.getDescriptionAnnotation(alternatives[0]!).pipe((d) => (d._tag === "Some" ? d.value : undefined))
          : undefined;
      const label = expected ?? alternatives.map((member) => describeAst(member)).join(" | ");
      return new ParseResult.Type(issue.ast, issue.actual, `Expected ${label}, actual ${describe(issue.actual)}`);
    }
    default:
      return issue;
  }
}

/** A union member as the user would write it: a literal, or a mapping's distinguishing keys. */
function describeAst(ast: SchemaAST.AST): string {
  const description = SchemaAST.getDescriptionAnnotation(ast);
  if (ast._tag === "Union") return ast.types.map(describeAst).join(" | ");
  if (ast._tag === "TypeLiteral") {
    const required = ast.propertySignatures.filter((p) => !p.isOptional).map((p) => String(p.name));
    return `{${required.join(", ")}}`;
  }
  if (ast._tag === "Transformation") return describeAst(ast.from);
  return description._tag === "Some" && ast._tag !== "Literal" ? description.value : String(ast);
}

/** One line per wrong field: its path, what was expected, what was found. */
export function formatProblems(error: ParseResult.ParseError): string[] {
  const issues = ParseResult.ArrayFormatter.formatIssueSync(pruneUnions(error.issue));
  const grouped = new Map<string, { expected: string[]; found: string; other: string[] }>();
  for (const issue of issues) {
    const path = formatPath(issue.path as Path) || "(top level)";
    const entry = grouped.get(path) ?? { expected: [], found: "", other: [] };
    grouped.set(path, entry);
    const typeMismatch = EXPECTED_ACTUAL.exec(issue.message);
    if (issue._tag === "Missing") entry.other.push("missing (required)");
    else if (issue._tag === "Unexpected") {
      const allowed = UNEXPECTED.exec(issue.message)?.[1]?.replaceAll('"', "").split(" | ").join(", ");
      entry.other.push(`unknown key${allowed ? ` (allowed here: ${allowed})` : ""}`);
    } else if (typeMismatch) {
      // Effect names a struct by its type; users write mappings.
      const expected = typeMismatch[1]!;
      // (a struct of only optional fields prints as {}, also inside a union)
      entry.expected.push(
        /^(Struct|\{ readonly)/.test(expected) ? "a mapping" : expected.replaceAll("{}", "a mapping"),
      );
      entry.found = typeMismatch[2]!;
    } else entry.other.push(issue.message);
  }
  const problems: string[] = [];
  for (const [path, { expected, found, other }] of grouped) {
    if (expected.length > 0) problems.push(`${path}: expected ${[...new Set(expected)].join(" | ")}, found ${found}`);
    for (const message of other) problems.push(`${path}: ${message}`);
  }
  return problems;
}

const decode = Schema.decodeUnknownEither(ExperimentConfig, { errors: "all", onExcessProperty: "error" });

export function decodeConfig(raw: unknown, source = "config"): Either.Either<ExperimentConfig, ConfigError> {
  return Either.mapLeft(decode(raw), (error) => new ConfigError({ source, problems: formatProblems(error) }));
}

/** A resolved config received as YAML text (e.g. from the experiment's KV bucket). */
export function decodeConfigText(text: string, source: string): Either.Either<ExperimentConfig, ConfigError> {
  try {
    return decodeConfig(YAML.parse(text), source);
  } catch (error) {
    return Either.left(new ConfigError({ source, problems: [`YAML: ${(error as Error).message}`] }));
  }
}

export interface LoadOptions {
  /** `a.b=c` overrides, applied in order after the files. */
  readonly set?: readonly string[];
}

// ── `backbones:` — settings for one backbone ─────────────────────────────────────────────────────

/** Paths of the values in a mapping (lists are values). */
const leafPaths = (raw: Raw, prefix: Path = []): Path[] =>
  Object.entries(raw).flatMap(([key, value]) =>
    isMapping(value) && Object.keys(value).length > 0 ? leafPaths(value, [...prefix, key]) : [[...prefix, key]],
  );

const isBackbone = (name: string) => Either.isRight(Schema.decodeUnknownEither(ModelSection)({ backbone: name }));

/** Every problem of a `backbones:` section: unknown backbones, unknown settings, a block that switches backbone. */
function backboneBlockProblems(backbones: unknown): string[] {
  if (!isMapping(backbones))
    return [`backbones: expected a mapping (backbone → settings), found ${describe(backbones)}`];
  return Object.entries(backbones).flatMap(([name, block]) => {
    if (!isBackbone(name)) return [`backbones.${name}: not a backbone (model.backbone is dense | mot | blt)`];
    if (!isMapping(block)) return [`backbones.${name}: expected a mapping of settings, found ${describe(block)}`];
    const pathProblems = leafPaths(block).flatMap((path) => {
      if (path[0] === "model" && path[1] === "backbone") return ["model.backbone: cannot be set here"];
      const missing = missingSetting(path);
      return missing ? [missing] : [];
    });
    // Values are checked on their own (every other field at its default), so every block is checked, chosen or not.
    const valueProblems =
      pathProblems.length > 0
        ? []
        : Either.match(decodeConfig({ ...block, experiment: "backbones" }), {
            onLeft: (error) => [...error.problems],
            onRight: () => [],
          });
    return [...pathProblems, ...valueProblems].map((problem) => `backbones.${name}.${problem}`);
  });
}

/**
 * The raw (undecoded) config: files (with their `extends:` chain), then the `backbones:` block of the
 * chosen `model.backbone` (e.g. BLT's budgets in bytes and its own base policy), then `--set`.
 * `--set model.backbone=blt` picks the blt block; the resolved config no longer has `backbones:`.
 */
export function resolveRawConfig(file: string, options: LoadOptions = {}): Raw {
  const settings = (options.set ?? []).map(parseSetting);
  const { backbones, ...files } = readConfigFile(file);
  const withSettings = settings.reduce(applySetting, files);
  if (backbones === undefined) return withSettings;
  const problems = backboneBlockProblems(backbones);
  if (problems.length > 0) throw new ConfigError({ source: file, problems });
  const backbone = (withSettings.model as Raw | undefined)?.backbone ?? "dense";
  const block = (backbones as Raw)[String(backbone)];
  return isMapping(block) ? settings.reduce(applySetting, mergeConfigs(files, block)) : withSettings;
}

/** Reads, composes, overrides and validates a config. */
export const loadConfig = (file: string, options: LoadOptions = {}): Effect.Effect<ExperimentConfig, ConfigError> =>
  Effect.try({
    try: () => resolveRawConfig(file, options),
    catch: (error) =>
      error instanceof ConfigError ? error : new ConfigError({ source: file, problems: [String(error)] }),
  }).pipe(Effect.flatMap((raw) => decodeConfig(raw, file)));

/** The config as YAML with every default filled in: what `--dry-run` prints and a run records. */
export const renderConfig = (config: ExperimentConfig): string =>
  YAML.stringify(Schema.encodeSync(ExperimentConfig)(config), { lineWidth: 0 });

/** The directory a run writes to: <output.dir>/<experiment>. */
export const runDirectory = (config: ExperimentConfig): string => resolve(config.output.dir, config.experiment);

/** Records the resolved config as <output.dir>/<experiment>/config.yaml and returns its path. */
export const writeResolvedConfig = (config: ExperimentConfig): Effect.Effect<string, ConfigError> =>
  Effect.try({
    try: () => {
      const dir = runDirectory(config);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, "config.yaml");
      writeFileSync(file, renderConfig(config));
      return file;
    },
    catch: (error) =>
      new ConfigError({ source: "output.dir", problems: [`cannot write the resolved config: ${String(error)}`] }),
  });

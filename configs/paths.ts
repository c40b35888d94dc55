/**
 * The paths of a config, checked on this machine before any process starts: every field the schema
 * marks as a path (configs/schema.ts, PathCheckId) that the starting processes read, each problem
 * with the field's path, all of them at once. A missing `model.init` is then a config error found
 * in milliseconds, not a learner crashing six times over 39 s.
 */
import { accessSync, constants, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Option, SchemaAST } from "effect";
import { formatPath } from "./loader.ts";
import { type ConfigReader, ExperimentConfig, type PathCheck, PathCheckId } from "./schema.ts";

type Path = readonly (string | number)[];

export interface PathField {
  /** Where it is in the config (`model.init`, `rewards.modules[2].path`). */
  readonly field: string;
  /** As written; relative paths are read from the working directory. */
  readonly path: string;
  readonly check: PathCheck;
}

const pathCheckOf = (ast: SchemaAST.AST): PathCheck | undefined =>
  Option.getOrUndefined(SchemaAST.getAnnotation<PathCheck>(PathCheckId)(ast));

/** The path fields under `ast` that `value` sets (unions: every member is looked into; only set fields count). */
function collect(ast: SchemaAST.AST, value: unknown, at: Path): PathField[] {
  if (value === undefined) return [];
  const check = pathCheckOf(ast);
  if (check !== undefined && typeof value === "string") return [{ field: formatPath(at), path: value, check }];
  switch (ast._tag) {
    case "Refinement":
      return collect(ast.from, value, at);
    case "Transformation":
      return collect(ast.to, value, at);
    case "Suspend":
      return collect(ast.f(), value, at);
    case "Union":
      return ast.types.flatMap((member) => collect(member, value, at));
    case "TypeLiteral":
      if (typeof value !== "object" || value === null) return [];
      return ast.propertySignatures.flatMap((property) => {
        const key = property.name as string;
        return collect(property.type, (value as Record<string, unknown>)[key], [...at, key]);
      });
    case "TupleType":
      if (!Array.isArray(value)) return [];
      return value.flatMap((item, i) => ast.rest.flatMap((element) => collect(element.type, item, [...at, i])));
    default:
      return [];
  }
}

/**
 * Every path set in `config` that one of `readers` reads (all of them when absent), deduplicated:
 * a union may reach one field through several members.
 */
export function configPaths(config: ExperimentConfig, readers?: readonly ConfigReader[]): PathField[] {
  const found = collect(ExperimentConfig.ast, config, []);
  return found.filter(
    (entry, i) =>
      found.findIndex((other) => other.field === entry.field) === i &&
      (readers === undefined ||
        entry.check.readBy === undefined ||
        entry.check.readBy.some((reader) => readers.includes(reader))),
  );
}

/** What is at `path`, or undefined when nothing can be found there (absent, under a file, unreachable). */
const statOf = (path: string) => {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
};

const canAccess = (path: string, mode: number): boolean => {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
};

/** `model.init: hf:DIR` names a Hugging Face model directory instead of a factrl checkpoint. */
export const HUGGING_FACE_PREFIX = "hf:";

/** The Hugging Face directory a checkpoint field names (`hf:DIR`), or undefined for a factrl checkpoint. */
export const huggingFaceDir = (path: string): string | undefined =>
  path.startsWith(HUGGING_FACE_PREFIX) ? path.slice(HUGGING_FACE_PREFIX.length) : undefined;

/** What is missing from a Hugging Face model directory, or undefined (models/huggingface.ts checks the contents). */
function huggingFaceDirProblem(full: string): string | undefined {
  if (!statOf(full)?.isDirectory()) return `no such Hugging Face model directory ${full}`;
  const missing = ["config.json", "tokenizer.json"].filter((file) => !statOf(join(full, file))?.isFile());
  if (!["model.safetensors", "model.safetensors.index.json"].some((file) => statOf(join(full, file))?.isFile()))
    missing.push("model.safetensors (or model.safetensors.index.json)");
  return missing.length > 0 ? `${full} has no ${missing.join(", ")} (not a Hugging Face model directory)` : undefined;
}

/** What is wrong with `full` for a field of this kind, or undefined. */
function pathProblem(kind: PathCheck["kind"], full: string): string | undefined {
  const stat = statOf(full);
  switch (kind) {
    case "file":
    case "module":
      if (stat === undefined) return `no such file ${full}`;
      if (!stat.isFile()) return `${full} is not a file`;
      return canAccess(full, constants.R_OK) ? undefined : `${full} is not readable`;
    case "checkpoint": {
      if (stat === undefined) return `no such checkpoint directory ${full}`;
      if (!stat.isDirectory()) return `${full} is not a checkpoint directory (a checkpoint is a directory)`;
      const manifest = join(full, "manifest.json");
      if (!statOf(manifest)?.isFile())
        return `${full} has no manifest.json (not a factrl checkpoint, or its save was interrupted)`;
      return canAccess(manifest, constants.R_OK) ? undefined : `${manifest} is not readable`;
    }
    case "directory": {
      if (stat !== undefined) {
        if (!stat.isDirectory()) return `${full} is not a directory`;
        return canAccess(full, constants.W_OK) ? undefined : `${full} is not writable`;
      }
      // Created when needed: the nearest existing ancestor must be a directory we may write in.
      let ancestor = dirname(full);
      while (statOf(ancestor) === undefined && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
      if (!statOf(ancestor)?.isDirectory()) return `cannot create ${full}: ${ancestor} is not a directory`;
      return canAccess(ancestor, constants.W_OK) ? undefined : `cannot create ${full}: ${ancestor} is not writable`;
    }
  }
}

/**
 * What is wrong with a path field on this machine (`model.init: no such checkpoint directory
 * /abs/path`), or undefined. Relative paths resolve from `cwd`; problems name the absolute path.
 */
export function pathFieldProblem({ field, path, check }: PathField, cwd: string = process.cwd()): string | undefined {
  const hf = check.kind === "checkpoint" ? huggingFaceDir(path) : undefined;
  const problem =
    hf !== undefined ? huggingFaceDirProblem(resolve(cwd, hf)) : pathProblem(check.kind, resolve(cwd, path));
  return problem === undefined ? undefined : `${field}: ${problem}`;
}

/** The processes `factrl run` starts for `config`: the launcher and every role with a count above 0 (or `auto`). */
export const runReaders = (config: ExperimentConfig): ConfigReader[] => [
  "launcher",
  ...Object.entries(config.actors).flatMap(([role, count]) => (count !== 0 ? [role as ConfigReader] : [])),
];

/**
 * A fast yes/no check compiled from an Effect Schema's AST, so that valid messages — nearly all of
 * them — are accepted without the cost of Effect's full parser (≈ 10 µs for a small metrics event,
 * more than msgpack decoding itself). It is conservative: it only says "valid" when Effect's decoder
 * would also accept the input (refinements run their real filters), and anything it cannot judge
 * goes to Effect's decoder, which stays the authority and writes the error messages.
 *
 * The check is generated JavaScript (one function per schema node, property names inlined), so each
 * message type gets its own monomorphic code instead of sharing generic closures that V8 would
 * de-optimise once several message shapes flow through them.
 */
import { Either, Option, type SchemaAST } from "effect";

export type Check = (input: unknown) => boolean;

const NO_OPTIONS: SchemaAST.ParseOptions = {};

/** Runtime helpers the generated code calls (refinement filters, declarations). */
interface Helpers {
  readonly refs: unknown[];
  readonly functions: string[];
}

const isRightResult = (result: unknown) => Either.isEither(result) && Either.isRight(result);
const refinementPasses = (refinement: SchemaAST.Refinement, input: unknown) =>
  Option.isNone(refinement.filter(input, NO_OPTIONS, refinement));

/** Returns the name of a generated function checking `ast`, or undefined when not covered. */
function emit(ast: SchemaAST.AST, helpers: Helpers): string | undefined {
  const name = `c${helpers.functions.length}`;
  helpers.functions.push(""); // reserve the slot; filled below
  const ref = (value: unknown) => {
    helpers.refs.push(value);
    return `refs[${helpers.refs.length - 1}]`;
  };
  let body: string | undefined;
  switch (ast._tag) {
    case "StringKeyword":
      body = `return typeof v === "string";`;
      break;
    case "NumberKeyword":
      body = `return typeof v === "number";`;
      break;
    case "BooleanKeyword":
      body = `return typeof v === "boolean";`;
      break;
    case "UndefinedKeyword":
      body = "return v === undefined;";
      break;
    case "UnknownKeyword":
    case "AnyKeyword":
      body = "return true;";
      break;
    case "Literal":
      body = `return v === ${typeof ast.literal === "bigint" ? ref(ast.literal) : JSON.stringify(ast.literal)};`;
      break;
    case "Union": {
      const members = ast.types.map((member) => emit(member, helpers));
      if (members.some((member) => member === undefined)) return undefined;
      body = `return ${members.map((member) => `${member}(v)`).join(" || ")};`;
      break;
    }
    case "Refinement": {
      const from = emit(ast.from, helpers);
      if (from === undefined) return undefined;
      body = `return ${from}(v) && refinementPasses(${ref(ast)}, v);`;
      break;
    }
    case "Declaration": {
      // e.g. Schema.instanceOf: its decoder returns an Either synchronously.
      const decode = ast.decodeUnknown(...ast.typeParameters);
      body = `return isRightResult(${ref(decode)}(v, noOptions, ${ref(ast)}));`;
      break;
    }
    case "TupleType": {
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined;
      const item = emit(ast.rest[0]!.type, helpers);
      if (item === undefined) return undefined;
      body = `if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (!${item}(v[i])) return false;
  return true;`;
      break;
    }
    case "TypeLiteral":
      body = emitTypeLiteral(ast, helpers);
      break;
    default:
      return undefined;
  }
  if (body === undefined) return undefined;
  helpers.functions[Number(name.slice(1))] = `function ${name}(v) {\n  ${body}\n}`;
  return name;
}

function emitTypeLiteral(ast: SchemaAST.TypeLiteral, helpers: Helpers): string | undefined {
  const lines = [`if (typeof v !== "object" || v === null || Array.isArray(v)) return false;`];
  for (const property of ast.propertySignatures) {
    if (typeof property.name !== "string") return undefined;
    const check = emit(property.type, helpers);
    if (check === undefined) return undefined;
    const key = JSON.stringify(property.name);
    lines.push(
      property.isOptional
        ? `if (hasOwn.call(v, ${key}) && v[${key}] !== undefined && !${check}(v[${key}])) return false;`
        : `if (!hasOwn.call(v, ${key}) || !${check}(v[${key}])) return false;`,
    );
  }
  if (ast.indexSignatures.length > 1) return undefined;
  const index = ast.indexSignatures[0];
  if (index !== undefined) {
    if (index.parameter._tag !== "StringKeyword" || ast.propertySignatures.length > 0) return undefined;
    const check = emit(index.type, helpers);
    if (check === undefined) return undefined;
    lines.push(`for (const k in v) if (hasOwn.call(v, k) && !${check}(v[k])) return false;`);
  }
  lines.push("return true;");
  return lines.join("\n  ");
}

/** Compiles `ast` to a check, or returns undefined when the schema uses something not covered here. */
export function compileCheck(ast: SchemaAST.AST): Check | undefined {
  const helpers: Helpers = { refs: [], functions: [] };
  const root = emit(ast, helpers);
  if (root === undefined) return undefined;
  const source = `${helpers.functions.join("\n")}\nreturn ${root};`;
  const build = new Function("refs", "hasOwn", "noOptions", "isRightResult", "refinementPasses", source);
  return build(helpers.refs, Object.prototype.hasOwnProperty, NO_OPTIONS, isRightResult, refinementPasses) as Check;
}

/** The check for `ast`; one that never passes (everything goes to Effect's decoder) when not covered. */
export const checkFor = (ast: SchemaAST.AST): Check => compileCheck(ast) ?? (() => false);

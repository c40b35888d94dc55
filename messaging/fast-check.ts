/**
 * A fast yes/no check compiled from an Effect Schema's AST, so that valid messages — nearly all of
 * them — are accepted without the cost of Effect's full parser (≈ 10 µs for a small metrics event,
 * more than msgpack decoding itself). It is conservative: it only says "valid" when Effect's decoder
 * would also accept the input (refinements run their real filters), and anything it cannot judge
 * goes to Effect's decoder, which stays the authority and writes the error messages.
 */
import { Either, Option, type SchemaAST } from "effect";

export type Check = (input: unknown) => boolean;

const hasOwn = Object.prototype.hasOwnProperty;
const NO_OPTIONS: SchemaAST.ParseOptions = {};

/** Compiles `ast` to a check, or returns undefined when the schema uses something not covered here. */
export function compileCheck(ast: SchemaAST.AST): Check | undefined {
  switch (ast._tag) {
    case "StringKeyword":
      return (u) => typeof u === "string";
    case "NumberKeyword":
      return (u) => typeof u === "number";
    case "BooleanKeyword":
      return (u) => typeof u === "boolean";
    case "UndefinedKeyword":
      return (u) => u === undefined;
    case "UnknownKeyword":
    case "AnyKeyword":
      return () => true;
    case "Literal": {
      const literal = ast.literal;
      return (u) => u === literal;
    }
    case "Union": {
      const members = ast.types.map(compileCheck);
      if (members.some((member) => member === undefined)) return undefined;
      const checks = members as Check[];
      return (u) => checks.some((check) => check(u));
    }
    case "Refinement": {
      const from = compileCheck(ast.from);
      if (from === undefined) return undefined;
      const refinement = ast;
      return (u) => from(u) && Option.isNone(refinement.filter(u, NO_OPTIONS, refinement));
    }
    case "Declaration": {
      // e.g. Schema.instanceOf: its decoder returns an Either synchronously.
      const decode = ast.decodeUnknown(...ast.typeParameters);
      const declaration = ast;
      return (u) => {
        const result: unknown = decode(u, NO_OPTIONS, declaration);
        return Either.isEither(result) && Either.isRight(result);
      };
    }
    case "TupleType": {
      if (ast.elements.length > 0 || ast.rest.length !== 1) return undefined;
      const item = compileCheck(ast.rest[0]!.type);
      if (item === undefined) return undefined;
      return (u) => {
        if (!Array.isArray(u)) return false;
        for (const element of u) if (!item(element)) return false;
        return true;
      };
    }
    case "TypeLiteral":
      return compileTypeLiteral(ast);
    default:
      return undefined;
  }
}

function compileTypeLiteral(ast: SchemaAST.TypeLiteral): Check | undefined {
  const properties: { name: PropertyKey; optional: boolean; check: Check }[] = [];
  for (const property of ast.propertySignatures) {
    const check = compileCheck(property.type);
    if (check === undefined) return undefined;
    properties.push({ name: property.name, optional: property.isOptional, check });
  }
  if (ast.indexSignatures.length > 1) return undefined;
  const index = ast.indexSignatures[0];
  let indexCheck: Check | undefined;
  if (index !== undefined) {
    if (index.parameter._tag !== "StringKeyword" || properties.length > 0) return undefined;
    indexCheck = compileCheck(index.type);
    if (indexCheck === undefined) return undefined;
  }
  return (u) => {
    if (typeof u !== "object" || u === null || Array.isArray(u)) return false;
    const record = u as Record<PropertyKey, unknown>;
    for (const { name, optional, check } of properties) {
      if (!hasOwn.call(record, name)) {
        if (optional) continue;
        return false;
      }
      const value = record[name];
      if (optional && value === undefined) continue;
      if (!check(value)) return false;
    }
    if (indexCheck !== undefined) {
      for (const key in record) if (hasOwn.call(record, key) && !indexCheck(record[key])) return false;
    }
    return true;
  };
}

/** A check that never passes: everything goes to Effect's decoder. */
export const alwaysDecode: Check = () => false;

export const checkFor = (ast: SchemaAST.AST): Check => compileCheck(ast) ?? alwaysDecode;

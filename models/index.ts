/** What other parts may use from models/. */
export * from "./policy.ts";

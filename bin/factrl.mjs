#!/usr/bin/env node
// factrl is written in TypeScript and runs through tsx's loader: no build step between an edit and a run.
import { register } from "tsx/esm/api";

register();
await import("../cli/main.ts");

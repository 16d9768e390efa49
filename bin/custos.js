#!/usr/bin/env node
// The `custos` command: runs the compiled CLI (npm run build, or the README's commands, build it).
import { main } from "../dist/src/cli/main.js";
await main(process.argv);

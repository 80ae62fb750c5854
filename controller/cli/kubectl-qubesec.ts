#!/usr/bin/env node
// The kubectl plugin: kubectl runs `kubectl-qubesec check ARGS` for `kubectl qubesec check ARGS`, the same arguments
// `qubesec` takes, so this entry point is the qubesec CLI under the name kubectl looks for on PATH.
import './main.js';

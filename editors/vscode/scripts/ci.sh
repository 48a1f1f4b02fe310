#!/usr/bin/env bash
# CI for the VS Code extension: clean install from the lock file, type check, bundle,
# unit tests (Node's test runner, no VS Code), and the .vsix, kept in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== vscode extension: %s\n' "$*"; }

step "npm ci"
npm ci --no-audit --no-fund
step "tsc --noEmit"
npx tsc --noEmit -p .
step "esbuild bundle"
npm run --silent bundle
step "unit tests (node --test)"
npm run --silent build-tests
node --test out/test/*.test.js
step "vsce package"
rm -f dist/*.vsix
npx vsce package --no-dependencies --out dist/amorsize.vsix
test -s dist/amorsize.vsix
printf '\n== vscode extension: OK in %ss, kept %s\n' "$(($(date +%s) - start))" "$PWD/dist/amorsize.vsix"

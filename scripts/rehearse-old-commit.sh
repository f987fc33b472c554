#!/usr/bin/env bash
# Runs today's deploy rehearsal (test/rehearsal/, plus the mock harness it reads the graph with) against the
# infra and code of an older commit, to see which of the cloud review's defects it names there.
#
#   scripts/rehearse-old-commit.sh [commit]     # default: the commit before the first deploy fix (issue #20)
#
# The old tree gets a worktree in a temporary folder, today's test/rehearsal/, infra/mock-harness.ts and the
# test fixtures' index, and a node_modules whose entries link this checkout's installed packages (the
# workspace packages link the old tree's own). It prints each rehearsal check as passed or failed, with the
# review's defect number where the check names one, then removes the worktree.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# ad124f7 (the predictions data plane in AWS) carried the first fixes from the cloud review; its parent is the
# last tree the review describes.
COMMIT="${1:-ad124f7^}"
OLD="$(mktemp -d "${TMPDIR:-/tmp}/ganserve-old-XXXXXX")"
REPORT="$OLD.json"

cleanup() {
  git -C "$ROOT" worktree remove --force "$OLD" >/dev/null 2>&1 || rm -rf "$OLD"
  git -C "$ROOT" worktree prune
  rm -f "$REPORT" "$OLD.log"
}
trap cleanup EXIT

git -C "$ROOT" worktree add --detach "$OLD" "$COMMIT" >/dev/null
echo "rehearsing $(git -C "$ROOT" log -1 --format='%h %s' "$COMMIT")"

# Test-only pieces from today: the rehearsal, the graph extraction it uses, the fixtures' index.
rm -rf "$OLD/test/rehearsal"
cp -r "$ROOT/test/rehearsal" "$OLD/test/rehearsal"
cp "$ROOT/infra/mock-harness.ts" "$OLD/infra/mock-harness.ts"
cp -r "$ROOT/test/fixtures/index.ts" "$OLD/test/fixtures/index.ts"
cp "$ROOT/test/helpers/finetune.ts" "$OLD/test/helpers/finetune.ts"
ln -s "$ROOT/.sst" "$OLD/.sst"

mkdir -p "$OLD/node_modules/@ganserve"
for entry in "$ROOT"/node_modules/* "$ROOT"/node_modules/.bin "$ROOT"/node_modules/.cache; do
  name="$(basename "$entry")"
  [ "$name" = "@ganserve" ] || ln -s "$entry" "$OLD/node_modules/$name"
done
for pkg in "$OLD"/packages/*; do ln -s "$pkg" "$OLD/node_modules/@ganserve/$(basename "$pkg")"; done

cd "$OLD"
# Expected to fail on an old tree: the summary below is the point.
timeout 1500 npx vitest run --project e2e test/rehearsal --reporter=json --outputFile="$REPORT" >"$OLD.log" 2>&1 || true
if [ ! -s "$REPORT" ]; then
  tail -50 "$OLD.log"
  echo "the rehearsal produced no report" >&2
  exit 1
fi
node -e '
const report = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const named = new Set();
for (const file of report.testResults) {
  console.log(`\n${file.name.replace(/.*\/test\/rehearsal\//, "")}`);
  for (const t of file.assertionResults) {
    const defects = [...t.title.matchAll(/defect (\d+)/g)].map((m) => Number(m[1]));
    if (t.status === "failed") for (const d of defects) named.add(d);
    const why = t.status === "failed" ? `  <- ${(t.failureMessages[0] ?? "").split("\n")[0].slice(0, 160)}` : "";
    console.log(`  ${t.status === "passed" ? "pass" : t.status === "failed" ? "FAIL" : t.status}  ${t.title}${why}`);
  }
}
const fatal = [1, 2, 3, 4, 5, 6, 7];
console.log(`\ndefects named by failing checks: ${[...named].sort((a, b) => a - b).join(", ") || "none"}`);
console.log(`fatal defects not named: ${fatal.filter((d) => !named.has(d)).join(", ") || "none"}`);
' "$REPORT"

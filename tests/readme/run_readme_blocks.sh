#!/usr/bin/env bash
# Runs the README's shell blocks marked runnable, so that the commands a user copies keep working:
#   run_readme_blocks.sh README.md BUILD_DIR WORK_DIR
# A block is runnable when the line before its opening ``` fence is exactly <!-- runnable -->. Each
# block runs in WORK_DIR with `bash -euo pipefail`, the build's programs (build/apps, build/bench)
# first on PATH, as `chex`, `train_chexnet`, ... are named in the README. Only quick commands are
# marked (--help, a tiny model): the slow ones have their own tests. Fails when a block fails, or
# when no block is marked (a marker lost in an edit would otherwise pass silently).
set -uo pipefail
readme=$1 build=$2 work=$3
rm -rf "$work" && mkdir -p "$work/blocks"
# Extract: block N goes to blocks/N.sh.
awk -v dir="$work/blocks" '
  /^<!-- runnable -->$/ { marked = 1; next }
  marked && /^```/ && !inside { inside = 1; n++; file = sprintf("%s/%02d.sh", dir, n); printf "" > file; next }
  inside && /^```/ { inside = 0; marked = 0; close(file); next }
  inside { print >> file; next }
  { marked = 0 }
' "$readme"
blocks=("$work"/blocks/*.sh)
if [ ! -e "${blocks[0]}" ]; then
  echo "run_readme_blocks: no block in $readme is marked <!-- runnable -->" >&2
  exit 1
fi
export PATH="$build/apps:$build/bench:$PATH"
failed=0
for block in "${blocks[@]}"; do
  echo "=== $(basename "$block"):"
  sed 's/^/  | /' "$block"
  if ! (cd "$work" && bash -euo pipefail "$block") > "$block.log" 2>&1; then
    echo "run_readme_blocks: this block failed:" >&2
    cat "$block.log" >&2
    failed=1
  fi
done
echo "${#blocks[@]} runnable blocks, $([ $failed -eq 0 ] && echo "all passed" || echo "some failed")"
exit $failed

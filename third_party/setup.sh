#!/usr/bin/env bash
# One-stop set-up for chex on Debian/Ubuntu: installs the system packages it needs (with sudo when not
# root), configures and builds, then runs what was asked for.
#
#   bash third_party/setup.sh demo [train_chexnet options]   set up, build, train and evaluate
#                                     CheXNet on the synthetic demo set (the main job)
#   bash third_party/setup.sh test    set up, build, run the whole test suite
#   bash third_party/setup.sh build   set up and build only
#
# Environment: BUILD_DIR (default: build), CHEX_CMAKE_ARGS (extra configure flags, e.g.
# "-DCHEX_CUDA=OFF"), CHEX_JOBS (parallel build jobs; default: the number of cores).
set -euo pipefail
# Spinning OpenMP threads collapse on a shared machine (see chex/parallel.h); a user setting wins.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"

mode="${1:-build}"
case "$mode" in
  demo|test|build) ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "setup.sh: unknown mode '$mode' (use demo, test or build)" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build}"
jobs="${CHEX_JOBS:-$(nproc)}"

# --- System packages -----------------------------------------------------------------------------
packages=(cmake ninja-build g++ pkg-config catch2 libstb-dev libjpeg-dev nlohmann-json3-dev libdnnl-dev ocl-icd-opencl-dev libopenblas-dev libdcmtk-dev libopenmpi-dev openmpi-bin)
# Reference tests compare against PyTorch; only the test mode needs it.
[ "$mode" = test ] && packages+=(python3 python3-torch python3-torchvision python3-sklearn python3-pydicom python3-pil)
# The HTML report's browser test: headless Chromium renders it, html5lib and tidy validate it.
[ "$mode" = test ] && packages+=(chromium python3-html5lib tidy)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Configure and build -------------------------------------------------------------------------
# CUDA is picked up automatically when a toolkit is installed (nvcc on PATH or in /usr/local/cuda).
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${CHEX_CMAKE_ARGS:-}
cmake --build "$build" -j "$jobs"

# --- Run -----------------------------------------------------------------------------------------
case "$mode" in
  demo)
    # CheXNet end to end on the synthetic demo set (made once in $build/demo-data): train on the
    # CPU, keep the best-validation model, evaluate it on the test split, then show where it looks:
    # CAM overlays of a few test images and the localization scores on the test split's boxes.
    # Extra arguments go to train_chexnet (e.g. --data DIR for a real NIH folder, --max-steps N for
    # a quick look).
    data="${CHEX_DEMO_DATA:-$build/demo-data}"
    out="${CHEX_DEMO_OUT:-$build/demo-run-$(date +%Y%m%d-%H%M%S)}"
    "$build/apps/train_chexnet" --demo --data "$data" --out "$out" "${@:2}"
    # The CAM step runs the model at the size it was trained at (recorded in the run's log).
    size=$(grep -o 'image_size=[0-9]*' "$out/log.jsonl" | head -n 1 | cut -d= -f2)
    boxes="$data/BBox_List_2017.csv"
    if [ -f "$boxes" ] && [ -f "$out/test_predictions.csv" ]; then
      # The boxes of the run's test split only (its predictions file lists it): the model saw the others.
      awk -F, 'NR == FNR { if (FNR > 1) test[$1] = 1; next } FNR == 1 || ($1 in test)' \
        "$out/test_predictions.csv" "$boxes" > "$out/test_boxes.csv"
    fi
    if [ -f "$out/test_boxes.csv" ] && [ "$(wc -l < "$out/test_boxes.csv")" -gt 1 ]; then
      "$build/apps/chex" localize --weights "$out/best.safetensors" --data "$data" --bbox "$out/test_boxes.csv" \
        --image-size "${size:-224}" --json "$out/localization.json" || [ $? -eq 3 ]  # 3: some images skipped
      shown=()
      while read -r name; do
        path=$(find "$data" -name "$name" -print -quit)
        [ -n "$path" ] && shown+=("$path")
      done < <(tail -n +2 "$out/test_boxes.csv" | cut -d, -f1 | sort -u | head -n 6)
      if [ ${#shown[@]} -gt 0 ]; then
        "$build/apps/chex" cam --weights "$out/best.safetensors" --image-size "${size:-224}" --out "$out/cam" \
          "${shown[@]}" || [ $? -eq 3 ]
        echo "CAM overlays of ${#shown[@]} test images: $out/cam"
      fi
    fi
    ;;
  test)
    # GPU tests (label gpu) are excluded automatically on machines without a usable GPU.
    exclude=()
    "$build/apps/chex_devices" --has-gpu >/dev/null 2>&1 || exclude=(-LE gpu)
    ctest --test-dir "$build" --output-on-failure -j "$jobs" "${exclude[@]}"
    ;;
esac

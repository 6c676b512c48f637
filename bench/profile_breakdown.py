#!/usr/bin/python3
"""Groups a perf profile of bench_densenet into where the time goes: convolutions (GEMM/JIT kernels
and im2col/col2im), batch norm / ReLU, concatenation and copies, optimizer, allocation and page
faults, OpenMP/thread wake-ups, other.

    perf record -g -o perf.data build/bench/bench_densenet --mode train --size 224 --batch 16 --steps 2
    perf report -i perf.data --no-children -g none -n --sort dso,sym --stdio > report.txt
    python3 bench/profile_breakdown.py report.txt

Reads the self-time sample counts ("--no-children", "-n": exact, where the percentages of the
thousands of tiny JIT-code entries round to 0.00%) of `perf report --stdio`; a symbol is counted in
the first group whose pattern it matches, so the order of GROUPS matters.
"""
import re
import sys

# (group, patterns matched against "dso symbol"), first match wins.
GROUPS = [
    ("conv: GEMM (oneDNN JIT)", [r"\[JIT\]", r"jit_", r"gemm", r"sgemm", r"dnnl", r"libdnnl"]),
    # Winograd's 3x3 convolutions: the input (with its BN+ReLU), output and dy transforms.
    ("conv: Winograd transforms", [r"winograd"]),
    # A 1x1 convolution that normalises its input does it tile by tile in these (the GEMM is above),
    # and its input gradient goes through the BN+ReLU backward there too.
    ("conv: BN+ReLU in the 1x1 input tiles", [r"pointwise_forward", r"normalized_pointwise", r"normalize_tile"]),
    ("conv: im2col/col2im, padding", [r"im2col", r"col2im", r"conv2d", r"add_bias", r"bias_gradient", r"pad_image",
                                       r"dy_to_grid", r"shifted", r"split_taps", r"transpose_flip"]),
    ("BN/ReLU", [r"batch_?norm", r"relu", r"bn_", r"channel_sum", r"channel_squared"]),
    ("concat/copies", [r"concat", r"add_channels", r"copy", r"memcpy", r"memmove", r"contiguous", r"slice", r"strided"]),
    ("optimizer", [r"adam", r"optim"]),
    ("allocation/page faults", [r"malloc", r"free", r"Allocator", r"alloc", r"page_fault", r"clear_page",
                                r"do_anonymous", r"handle_mm", r"memset", r"mmap", r"munmap", r"zap_", r"lru",
                                r"folio", r"rmqueue", r"get_page"]),
    ("OpenMP/threads (wake-ups, barriers)", [r"libgomp", r"gomp", r"futex", r"schedule", r"sched", r"switch_to",
                                             r"omp", r"barrier", r"pthread", r"idle", r"wake"]),
    ("model set-up (random init, not in a step)", [r"Generator", r"__cos", r"__ieee754_log", r"__sin", r"randn"]),
    ("pooling/loss/other ops", [r"pool", r"bce", r"loss", r"chex::"]),
]

LINE = re.compile(r"^\s*[0-9.]+%\s+([0-9]+)\s+(\S+)\s+(.*)$")


def classify(text):
    for name, patterns in GROUPS:
        if any(re.search(p, text, re.IGNORECASE) for p in patterns):
            return name
    return "other"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "-"
    lines = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="replace")
    totals, top = {}, {}
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()  # pct: samples until normalised
        group = classify(f"{dso} {sym}")
        totals[group] = totals.get(group, 0.0) + pct
        top.setdefault(group, []).append((pct, f"{dso} {sym}"[:90]))
    whole = sum(totals.values()) or 1.0
    print(f"{'group':40s} {'% of samples':>12s}")
    for group, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{group:40s} {100.0 * n / whole:11.1f}%")
        for p, s in sorted(top[group], reverse=True)[:3]:
            print(f"    {100.0 * p / whole:5.1f}%  {s}")
    print(f"{'(samples)':40s} {int(whole):12d}")


if __name__ == "__main__":
    main()

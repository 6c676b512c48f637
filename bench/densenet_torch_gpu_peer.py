#!/usr/bin/python3
"""chex's bench_densenet and PyTorch eager side by side on one GPU: DenseNet-121 (14 classes), a
training step (forward, weighted BCE, backward, Adam) or inference (eval mode, no autograd) on
synthetic 224x224 images.

    python3 bench/densenet_torch_gpu_peer.py [--bench build/bench/bench_densenet] [--rounds 2]
        [--steps 15] [--warmup 3] [--configs train-fp32-16,train-fp32-64,...]
        [--chex-deterministic on|off] [--chex-cuda-graph on|off|both] [--chex-gpu-busy]

A configuration is MODE-PRECISION-BATCH: fp32 is float32 without TF32 on both sides; tf32 lets
convolutions and GEMMs use TF32 (chex: CHEX_CUDA_TF32=1, fp32 sets it to 0; PyTorch: allow_tf32);
bf16 is mixed precision: PyTorch's torch.autocast bfloat16 around the forward and the loss, model
and images channels_last; chex's --precision bf16 (bf16 convolutions through cuDNN, fp32
elsewhere; not yet run on a GPU when this was written). The
default configurations fit a short GPU session; --all runs every mode, precision and batch. chex records
its step as a CUDA graph (--chex-cuda-graph on, its default); `both` also times its eager steps
and prints what the graph gains.
PyTorch times its cuDNN algorithms (cudnn.benchmark); chex does with --chex-deterministic off
(default on: cuDNN's deterministic heuristics). Each round runs chex then PyTorch, every run its own process, so that the two alternate and share the card's
state. PyTorch runs with cudnn.benchmark on and is timed with CUDA events per step; chex's
bench_densenet synchronises at the end of each step. Both report the median step and the peak of
their allocator (chex: its stream-ordered pool; PyTorch: max_memory_allocated). Prints a table of
medians over rounds and the ratios, then one JSON line.
--chex-gpu-busy passes --gpu-busy to bench_densenet: CUPTI traces chex's timed steps and the table
adds the fraction of the step the GPU was busy (median over rounds; the JSON adds kernels per step
and the largest idle gap). Tracing costs chex a little time in those runs. When CUPTI is only in
PyTorch's NVIDIA wheels, their lib folders are put on bench_densenet's LD_LIBRARY_PATH.
"""
import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys

from densenet_torch_peer import make_step  # the same PyTorch step as the CPU comparison


def torch_child(mode, precision, batch, steps, warmup):
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    tf32 = precision in ("tf32", "bf16")  # autocast leaves the fp32 ops it does not cast as they are
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(2017)
    device = torch.device("cuda")
    model = torchvision.models.densenet121(weights=None, num_classes=14).to(device)
    x = torch.randn(batch, 3, 224, 224, device=device)
    targets = (torch.rand(batch, 14, device=device) < 0.3).float()
    w_pos, w_neg = torch.full((14,), 0.7, device=device), torch.full((14,), 0.3, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    train = mode == "train"
    model.train(train)
    autocast = None
    if precision == "bf16":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731

    step = make_step(model, x, targets, w_pos, w_neg, optimizer, train, autocast)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000.0)
    print(json.dumps({"median_s": statistics.median(times), "min_s": min(times),
                      "peak_bytes": torch.cuda.max_memory_allocated()}))


def wheel_cupti_dirs():
    """The folders of libcupti in PyTorch's NVIDIA wheels (the nvidia namespace package), if any."""
    try:
        import nvidia
    except ImportError:
        return []
    found = {os.path.dirname(f) for root in nvidia.__path__
             for f in glob.glob(os.path.join(root, "**", "libcupti.so*"), recursive=True)}
    return sorted(found)


def run_chex(bench, mode, precision, batch, steps, warmup, deterministic, cuda_graph, gpu_busy=False):
    env = dict(os.environ)
    # Unset, chex uses TF32 for convolutions (PyTorch's default): fp32 here means none anywhere;
    # bf16 (--precision bf16: bf16 convolutions, fp32 elsewhere) keeps the default for what stays fp32,
    # as PyTorch's autocast runs here with TF32 allowed.
    env["CHEX_CUDA_TF32"] = {"fp32": "0", "tf32": "1", "bf16": "1"}[precision]
    command = [bench, "--device", "cuda", "--mode", mode, "--batch", str(batch), "--size", "224",
               "--steps", str(steps), "--warmup", str(warmup), "--deterministic", deterministic,
               "--cuda-graph", cuda_graph]
    if precision == "bf16":
        command += ["--precision", "bf16"]
    if gpu_busy:
        command.append("--gpu-busy")
        extra = wheel_cupti_dirs()  # looked at after the system's own CUPTI
        if extra:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [env.get("LD_LIBRARY_PATH")] + extra))
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"bench_densenet failed ({out.returncode}): {out.stderr.strip()}")
    line = json.loads(out.stdout.strip().splitlines()[-1])
    # The allocator's peak plus, with CUDA graphs, the graph's own memory (device_peak_bytes).
    peak = line.get("device_peak_bytes", line["alloc_peak_bytes"])
    result = {"median_s": line["median_s"], "min_s": line["min_s"], "peak_bytes": peak}
    if gpu_busy:
        result.update({k: line.get(k) for k in ("gpu_busy_fraction", "kernels_per_step", "largest_gap_us")})
        if result["gpu_busy_fraction"] is None:  # the result line says why
            reason = re.search(r"GPU busy: not measured \((.*)\)$", out.stdout, re.MULTILINE)
            result["gpu_busy_note"] = reason.group(1) if reason else "no reason given"
    return result


def run_torch(mode, precision, batch, steps, warmup):
    out = subprocess.run([sys.executable, __file__, "--child", f"{mode}-{precision}-{batch}", "--steps", str(steps),
                          "--warmup", str(warmup)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"PyTorch run failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "bench", "bench_densenet"))
    p.add_argument("--configs", default="train-fp32-16,train-tf32-16,train-fp32-64,infer-fp32-16,train-bf16-16",
                   help="comma-separated MODE-PRECISION-BATCH; --all for every one the GPU speed issue names")
    p.add_argument("--all", action="store_true", help="train and infer, fp32/tf32/bf16, batch 16 and 64")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--chex-deterministic", choices=["on", "off"], default="on",
                   help="bench_densenet --deterministic: off lets chex time cuDNN's algorithms as "
                        "PyTorch's cudnn.benchmark does (default on)")
    p.add_argument("--chex-cuda-graph", choices=["on", "off", "both"], default="on",
                   help="bench_densenet --cuda-graph; both: time chex's eager steps too (default on)")
    p.add_argument("--chex-gpu-busy", action="store_true",
                   help="bench_densenet --gpu-busy: the fraction of chex's step the GPU was busy (CUPTI)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        mode, precision, batch = a.child.split("-")
        torch_child(mode, precision, int(batch), a.steps, a.warmup)
        return

    if a.all:
        a.configs = ",".join(f"{m}-{p}-{b}" for m in ("train", "infer") for p in ("fp32", "tf32", "bf16")
                             for b in (16, 64))
    graph_modes = ["on", "off"] if a.chex_cuda_graph == "both" else [a.chex_cuda_graph]
    results = []
    eager_column = f" {'eager ms':>9}" if len(graph_modes) > 1 else ""
    busy_column = f" {'GPU busy':>9}" if a.chex_gpu_busy else ""
    print(f"{'config':<16} {'chex ms':>9}{eager_column} {'torch ms':>9} {'speed-up':>9} {'chex GiB':>9} "
          f"{'torch GiB':>10} {'memory':>7}{busy_column}")

    def show(value, fmt, suffix=""):
        if value is None:
            return "n/a".rjust(len(format(0.0, fmt)) + len(suffix))
        return format(value, fmt) + suffix

    for config in a.configs.split(","):
        mode, precision, batch = config.split("-")
        chex_runs = {m: [] for m in graph_modes}
        torch_runs = []
        for _ in range(a.rounds):  # chex and PyTorch alternate, each run its own process
            for m in graph_modes:
                chex_runs[m].append(run_chex(a.bench, mode, precision, int(batch), a.steps, a.warmup,
                                             a.chex_deterministic, m, a.chex_gpu_busy))
            torch_runs.append(run_torch(mode, precision, int(batch), a.steps, a.warmup))

        def median_of(runs):
            return statistics.median(r["median_s"] for r in runs) if runs and runs[0] else None

        def peak_of(runs):
            return max(r["peak_bytes"] for r in runs) / 2**30 if runs and runs[0] else None

        c, cm = median_of(chex_runs[graph_modes[0]]), peak_of(chex_runs[graph_modes[0]])
        eager = median_of(chex_runs["off"]) if len(graph_modes) > 1 else None
        t, tm = median_of(torch_runs), peak_of(torch_runs)
        row = {"config": config, "chex_s": c, "chex_cuda_graph": graph_modes[0], "torch_s": t,
               "speedup": t / c if c else None, "chex_peak_gib": cm, "torch_peak_gib": tm,
               "memory_ratio": cm / tm if cm and tm else None}
        if len(graph_modes) > 1:
            row.update({"chex_eager_s": eager, "graph_speedup": eager / c if c and eager else None})
        busy = None
        if a.chex_gpu_busy:
            for m in graph_modes:  # the medians over rounds; "eager_" for the eager column of `both`
                prefix = "chex_eager_" if m == "off" and len(graph_modes) > 1 else "chex_"
                for key in ("gpu_busy_fraction", "kernels_per_step", "largest_gap_us"):
                    values = [r[key] for r in chex_runs[m] if r and r.get(key) is not None]
                    row[prefix + key] = statistics.median(values) if values else None
                notes = {r["gpu_busy_note"] for r in chex_runs[m] if r and "gpu_busy_note" in r}
                if notes:
                    row[prefix + "gpu_busy_note"] = "; ".join(sorted(notes))
                    print(f"{config}: chex GPU busy not measured ({row[prefix + 'gpu_busy_note']})", file=sys.stderr)
            busy = row["chex_gpu_busy_fraction"]
        results.append(row)
        eager_cell = f" {show(eager * 1e3 if eager else None, '9.2f')}" if len(graph_modes) > 1 else ""
        busy_cell = f" {show(busy * 100 if busy is not None else None, '8.1f', '%')}" if a.chex_gpu_busy else ""
        print(f"{config:<16} {show(c * 1e3 if c else None, '9.2f')}{eager_cell} {t * 1e3:9.2f} "
              f"{show(row['speedup'], '8.2f', 'x')} {show(cm, '9.2f')} {tm:10.2f} {show(row['memory_ratio'], '6.2f', 'x')}"
              f"{busy_cell}", flush=True)
    print(json.dumps({"bench": "densenet121_gpu_peer", "rounds": a.rounds, "steps": a.steps, "results": results}))


if __name__ == "__main__":
    main()

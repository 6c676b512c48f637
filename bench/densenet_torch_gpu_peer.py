#!/usr/bin/python3
"""chex's bench_densenet and PyTorch eager side by side on one GPU: DenseNet-121 (14 classes), a
training step (forward, weighted BCE, backward, Adam) or inference (eval mode, no autograd) on
synthetic 224x224 images.

    python3 bench/densenet_torch_gpu_peer.py [--bench build/bench/bench_densenet] [--rounds 2]
        [--steps 15] [--warmup 3] [--configs train-fp32-16,train-fp32-64,train-tf32-16,infer-fp32-16]
        [--chex-deterministic on|off]

A configuration is MODE-PRECISION-BATCH: fp32 is float32 without TF32 on both sides; tf32 lets
convolutions and GEMMs use TF32 (chex: CHEX_CUDA_TF32=1, fp32 sets it to 0; PyTorch: allow_tf32).
PyTorch times its cuDNN algorithms (cudnn.benchmark); chex does with --chex-deterministic off
(default on: cuDNN's deterministic heuristics). Each round runs chex then PyTorch, every run its own process, so that the two alternate and share the card's
state. PyTorch runs with cudnn.benchmark on and is timed with CUDA events per step; chex's
bench_densenet synchronises at the end of each step. Both report the median step and the peak of
their allocator (chex: its stream-ordered pool; PyTorch: max_memory_allocated). Prints a table of
medians over rounds and the ratios, then one JSON line.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

from densenet_torch_peer import make_step  # the same PyTorch step as the CPU comparison


def torch_child(mode, precision, batch, steps, warmup):
    import torch
    import torchvision

    torch.backends.cudnn.benchmark = True
    tf32 = precision == "tf32"
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

    step = make_step(model, x, targets, w_pos, w_neg, optimizer, train)
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


def run_chex(bench, mode, precision, batch, steps, warmup, deterministic):
    env = dict(os.environ)
    # Unset, chex uses TF32 for convolutions (PyTorch's default): fp32 here means none anywhere.
    env["CHEX_CUDA_TF32"] = "1" if precision == "tf32" else "0"
    out = subprocess.run([bench, "--device", "cuda", "--mode", mode, "--batch", str(batch), "--size", "224",
                          "--steps", str(steps), "--warmup", str(warmup), "--deterministic", deterministic],
                         env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"bench_densenet failed ({out.returncode}): {out.stderr.strip()}")
    line = json.loads(out.stdout.strip().splitlines()[-1])
    return {"median_s": line["median_s"], "min_s": line["min_s"], "peak_bytes": line["alloc_peak_bytes"]}


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
    p.add_argument("--configs", default="train-fp32-16,train-fp32-64,train-tf32-16,infer-fp32-16")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--chex-deterministic", choices=["on", "off"], default="on",
                   help="bench_densenet --deterministic: off lets chex time cuDNN's algorithms as "
                        "PyTorch's cudnn.benchmark does (default on)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        mode, precision, batch = a.child.split("-")
        torch_child(mode, precision, int(batch), a.steps, a.warmup)
        return

    results = []
    print(f"{'config':<16} {'chex ms':>9} {'torch ms':>9} {'speed-up':>9} {'chex GiB':>9} {'torch GiB':>10} "
          f"{'memory':>7}")
    for config in a.configs.split(","):
        mode, precision, batch = config.split("-")
        chex_runs, torch_runs = [], []
        for _ in range(a.rounds):
            chex_runs.append(run_chex(a.bench, mode, precision, int(batch), a.steps, a.warmup, a.chex_deterministic))
            torch_runs.append(run_torch(mode, precision, int(batch), a.steps, a.warmup))
        c = statistics.median(r["median_s"] for r in chex_runs)
        t = statistics.median(r["median_s"] for r in torch_runs)
        cm = max(r["peak_bytes"] for r in chex_runs) / 2**30
        tm = max(r["peak_bytes"] for r in torch_runs) / 2**30
        row = {"config": config, "chex_s": c, "torch_s": t, "speedup": t / c, "chex_peak_gib": cm,
               "torch_peak_gib": tm, "memory_ratio": cm / tm if tm else None}
        results.append(row)
        print(f"{config:<16} {c * 1e3:9.2f} {t * 1e3:9.2f} {t / c:8.2f}x {cm:9.2f} {tm:10.2f} {cm / tm:6.2f}x",
              flush=True)
    print(json.dumps({"bench": "densenet121_gpu_peer", "rounds": a.rounds, "steps": a.steps, "results": results}))


if __name__ == "__main__":
    main()

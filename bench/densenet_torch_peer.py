#!/usr/bin/python3
"""PyTorch's peer figures for bench_densenet: torchvision's DenseNet-121 (14 classes), the same
training step (forward, weighted BCE, backward, Adam) on synthetic images, timed per step, with the
process's peak RSS. Each configuration runs in its own process, because peak RSS is per process.

    /usr/bin/python3 bench/densenet_torch_peer.py [--batch 16] [--size 224] [--steps 3] [--warmup 1]
                                                  [--threads 2] [--bench build/bench/bench_densenet]

Runs PyTorch default and memory_efficient=True, then (with --bench) chex's bench_densenet with the same
settings, and prints one JSON line per run and the ratios.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def child(args):
    import torch
    import torch.nn.functional as F
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(2017)
    model = torchvision.models.densenet121(weights=None, num_classes=14, memory_efficient=args.memory_efficient)
    model.train()
    x = torch.randn(args.batch, 3, args.size, args.size)
    targets = (torch.rand(args.batch, 14) < 0.3).float()
    w_pos, w_neg = torch.full((14,), 0.7), torch.full((14,), 0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        logits = model(x)
        loss = -(w_pos * targets * F.logsigmoid(logits) + w_neg * (1 - targets) * F.logsigmoid(-logits)).mean()
        loss.backward()
        optimizer.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"bench": "torch densenet121", "mode": "train", "batch": args.batch, "size": args.size,
                      "threads": args.threads, "memory_efficient": args.memory_efficient, "steps": args.steps,
                      "median_s": round(median, 6), "images_per_s": round(args.batch / median, 3),
                      "peak_rss_bytes": rss, "torch": torch.__version__}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bench", help="path to chex's bench_densenet, to run it side by side")
    p.add_argument("--memory-efficient", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    common = ["--batch", str(args.batch), "--size", str(args.size), "--steps", str(args.steps),
              "--warmup", str(args.warmup), "--threads", str(args.threads)]
    runs = {}
    for name, extra in (("torch default", []), ("torch memory_efficient", ["--memory-efficient"])):
        out = subprocess.run([sys.executable, __file__, "--child", *common, *extra], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        runs[name] = json.loads(out)
        print(out, flush=True)
    if args.bench:
        out = subprocess.run([args.bench, "--mode", "train", *common], check=True, capture_output=True,
                             text=True).stdout.strip().splitlines()
        print(out[0])
        print(out[-1], flush=True)
        runs["chex"] = json.loads(out[-1])
    gib = 1024.0 ** 3
    for name, r in runs.items():
        print(f"{name:24s} {r['median_s']:.3f} s/step  peak RSS {r['peak_rss_bytes'] / gib:.2f} GiB")
    if "chex" in runs:
        for name in ("torch default", "torch memory_efficient"):
            print(f"chex / {name}: time x{runs['chex']['median_s'] / runs[name]['median_s']:.2f}, "
                  f"peak RSS x{runs['chex']['peak_rss_bytes'] / runs[name]['peak_rss_bytes']:.2f}")


if __name__ == "__main__":
    main()

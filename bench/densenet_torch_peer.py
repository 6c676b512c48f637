#!/usr/bin/python3
"""chex's bench_densenet and PyTorch side by side on DenseNet-121 (14 classes): the training step
(forward, weighted BCE, backward, Adam) or inference (eval mode, no autograd), synthetic images.

    /usr/bin/python3 bench/densenet_torch_peer.py \
        [--bench build/bench/bench_densenet] [--mode train,infer] [--size 224,128] [--batch 16] \
        [--infer-batch1] [--rounds 3] [--steps 3] [--warmup 1] [--threads 2] [--wait passive|active]

Per configuration (mode x size x batch) it runs --rounds rounds, each one of: chex, PyTorch at its
best (tcmalloc preloaded when libtcmalloc-minimal4 is installed, channels_last model and input),
PyTorch default (NCHW, glibc malloc). The three alternate within a round so that noise on a shared
machine hits all alike. Every run is its own process, since peak RSS is per process. Prints the
median over rounds of each figure, the ratios (chex vs best, chex vs default), then one JSON line.
--infer-batch1 adds inference at batch 1 (latency) per size.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
GMAC_224 = 2.833  # per image, forward, at 224x224


def gflops(mode, size, images_per_s):
    per_image = 2.0 * GMAC_224 * (size * size) / (224.0 * 224.0) * (3.0 if mode == "train" else 1.0)
    return per_image * images_per_s


def make_step(model, x, targets, w_pos, w_neg, optimizer, train, autocast=None):
    """PyTorch's side of one step, the same on the CPU and the GPU (densenet_torch_gpu_peer.py): a
    training step (forward, weighted BCE, backward, Adam) or an inference forward. `autocast`, a
    context manager factory (torch.autocast(...)), wraps the forward and the loss, as PyTorch's
    mixed-precision recipe does; the backward and the optimizer step run outside it."""
    import contextlib

    import torch
    import torch.nn.functional as F

    scope = autocast or contextlib.nullcontext

    def step():
        if train:
            optimizer.zero_grad()
            with scope():
                logits = model(x)
                loss = -(w_pos * targets * F.logsigmoid(logits)
                         + w_neg * (1 - targets) * F.logsigmoid(-logits)).float().mean()
            loss.backward()
            optimizer.step()
        else:
            with torch.no_grad(), scope():
                model(x)

    return step


def child(args):
    import torch
    import torchvision

    torch.set_num_threads(args.threads)
    torch.manual_seed(2017)
    model = torchvision.models.densenet121(weights=None, num_classes=14)
    x = torch.randn(args.batch, 3, args.size, args.size)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    train = args.mode == "train"
    model.train(train)
    targets = (torch.rand(args.batch, 14) < 0.3).float()
    w_pos, w_neg = torch.full((14,), 0.7), torch.full((14,), 0.3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    step = make_step(model, x, targets, w_pos, w_neg, optimizer, train)
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"bench": "torch densenet121", "mode": args.mode, "batch": args.batch, "size": args.size,
                      "threads": args.threads, "channels_last": args.channels_last,
                      "tcmalloc": TCMALLOC in os.environ.get("LD_PRELOAD", ""), "steps": args.steps,
                      "median_s": round(median, 6), "images_per_s": round(args.batch / median, 3),
                      "gflops": round(gflops(args.mode, args.size, args.batch / median), 2),
                      "peak_rss_bytes": rss, "torch": torch.__version__}))


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()
    return json.loads(out[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default="build/bench/bench_densenet", help="chex's bench_densenet ('' to skip)")
    p.add_argument("--mode", default="train,infer", help="comma-separated: train, infer")
    p.add_argument("--size", default="224", help="comma-separated image sizes")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--infer-batch1", action="store_true", help="also inference at batch 1 per size")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--wait", choices=("passive", "active"), default=None,
                   help="OMP_WAIT_POLICY of every run, chex's and PyTorch's alike: spinning threads (active) are "
                        "faster on an idle machine and collapse on a loaded one (default: OMP_WAIT_POLICY from "
                        "the environment, else passive)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--channels-last", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.size = int(args.size)
        child(args)
        return

    configs = []
    for size in (int(s) for s in args.size.split(",")):
        for mode in args.mode.split(","):
            configs.append((mode, size, args.batch))
        if args.infer_batch1:
            configs.append(("infer", size, 1))

    env_default = dict(os.environ)
    env_default.pop("LD_PRELOAD", None)
    env_default["OMP_WAIT_POLICY"] = args.wait or os.environ.get("OMP_WAIT_POLICY", "passive")
    env_best = dict(env_default)
    if os.path.exists(TCMALLOC):
        env_best["LD_PRELOAD"] = TCMALLOC
        best_note = "tcmalloc + channels_last"
    else:
        best_note = "channels_last only: libtcmalloc-minimal4 is NOT installed (apt-get install libtcmalloc-minimal4)"
    best_note += f"; OMP_WAIT_POLICY={env_default['OMP_WAIT_POLICY']} for every run"
    print(f"PyTorch best = {best_note}; load average before: {os.getloadavg()}", flush=True)

    runners = {}
    if args.bench:
        runners["chex"] = lambda m, s, b: run_json([args.bench, "--mode", m, "--batch", str(b), "--size", str(s),
                                                    "--steps", str(args.steps), "--warmup", str(args.warmup),
                                                    "--threads", str(args.threads)], env_default)

    def torch_runner(best):
        def run(m, s, b):
            cmd = [sys.executable, __file__, "--child", "--mode", m, "--batch", str(b), "--size", str(s),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads", str(args.threads)]
            return run_json(cmd + (["--channels-last"] if best else []), env_best if best else env_default)
        return run

    runners["torch best"] = torch_runner(True)
    runners["torch default"] = torch_runner(False)

    keys = ("median_s", "images_per_s", "gflops", "peak_rss_bytes")
    results = []
    for mode, size, batch in configs:
        samples = {name: [] for name in runners}
        for r in range(args.rounds):
            for name, runner in runners.items():
                out = runner(mode, size, batch)
                samples[name].append(out)
                print(f"  round {r + 1} {mode} {size}px batch {batch} {name:13s} {out['median_s']:.4f} s/step "
                      f"{out['images_per_s']:.1f} img/s  RSS {out['peak_rss_bytes'] / 2**30:.2f} GiB", flush=True)
        row = {"mode": mode, "size": size, "batch": batch, "threads": args.threads, "rounds": args.rounds}
        for name, outs in samples.items():
            row[name] = {k: statistics.median(o[k] for o in outs if k in o) for k in keys}
            if name == "chex":
                row[name]["alloc_peak_bytes"] = statistics.median(o["alloc_peak_bytes"] for o in outs)
        if "chex" in row:
            for peer in ("torch best", "torch default"):
                row[f"speedup vs {peer}"] = row[peer]["median_s"] / row["chex"]["median_s"]
                row[f"rss ratio vs {peer}"] = row["chex"]["peak_rss_bytes"] / row[peer]["peak_rss_bytes"]
        results.append(row)

    gib = 2.0 ** 30
    print(f"\nload average after: {os.getloadavg()}; medians over {args.rounds} rounds, {args.threads} threads")
    print(f"{'config':22s} {'who':14s} {'s/step':>8s} {'img/s':>8s} {'GFLOP/s':>8s} {'RSS GiB':>8s}")
    for row in results:
        label = f"{row['mode']} {row['size']}px b{row['batch']}"
        for name in runners:
            f = row[name]
            print(f"{label:22s} {name:14s} {f['median_s']:8.4f} {f['images_per_s']:8.1f} {f['gflops']:8.1f} "
                  f"{f['peak_rss_bytes'] / gib:8.2f}")
        if "chex" in row:
            print(f"{label:22s} {'chex speed-up':14s} x{row['speedup vs torch best']:.2f} vs best, "
                  f"x{row['speedup vs torch default']:.2f} vs default; RSS x{row['rss ratio vs torch best']:.2f} "
                  f"of best, x{row['rss ratio vs torch default']:.2f} of default")
    print(json.dumps({"bench": "densenet121 side by side", "torch_best": best_note, "results": results}))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Generates PyTorch reference results for chex's op tests, at test time, into a build folder.

Each case is one safetensors file holding the inputs (drawn here), PyTorch's outputs and gradients,
and the op's settings in __metadata__. Nothing generated is committed. Run by CTest as the setup
fixture of the reference tests, with Debian's python3-torch:

    /usr/bin/python3 make_torch_references.py OUTPUT_DIR
"""
import os
import sys

import torch
import torch.nn.functional as F

from safetensors_writer import save


def leaf(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_()


def conv_cases(out):
    cases = [  # (N, Cin, H, W, Cout, k, stride, padding, bias)
        (2, 3, 9, 9, 4, 3, 1, 1, True),
        (2, 3, 16, 14, 5, 7, 2, 3, False),   # DenseNet's stem geometry, small
        (3, 8, 5, 5, 6, 1, 1, 0, False),     # bottleneck 1x1
        (1, 4, 8, 7, 3, 3, 2, 0, True),
    ]
    for i, (n, cin, h, w, cout, k, s, p, has_bias) in enumerate(cases):
        x, wt = leaf(n, cin, h, w), leaf(cout, cin, k, k, scale=0.3)
        b = leaf(cout) if has_bias else None
        y = F.conv2d(x, wt, b, stride=s, padding=p)
        gy = torch.randn_like(y)
        y.backward(gy)
        t = {"x": x, "weight": wt, "gy": gy, "y": y, "gx": x.grad, "gweight": wt.grad}
        if has_bias:
            t.update(bias=b, gbias=b.grad)
        save(os.path.join(out, f"conv2d_{i}.safetensors"), t, {"stride": s, "padding": p})


def batchnorm_cases(out):
    for i, (training, relu) in enumerate([(True, False), (False, False), (True, True)]):
        x = leaf(4, 6, 5, 3, scale=2.0)
        with torch.no_grad():
            x += torch.linspace(-1, 1, 6).view(1, 6, 1, 1)  # distinct channel means
        weight, bias = leaf(6), leaf(6)
        running_mean, running_var = torch.randn(6) * 0.1, torch.rand(6) + 0.5
        rm, rv = running_mean.clone(), running_var.clone()
        y = F.batch_norm(x, rm, rv, weight, bias, training=training, momentum=0.1, eps=1e-5)
        if relu:
            y = F.relu(y)
        gy = torch.randn_like(y)
        y.backward(gy)
        save(os.path.join(out, f"batchnorm_{i}.safetensors"),
             {"x": x, "weight": weight, "bias": bias, "running_mean": running_mean, "running_var": running_var,
              "gy": gy, "y": y, "gx": x.grad, "gweight": weight.grad, "gbias": bias.grad,
              "running_mean_after": rm, "running_var_after": rv},
             {"training": int(training), "relu": int(relu)})


def bce_cases(out):
    for i, weighted in enumerate([True, False]):
        logits = leaf(8, 14, scale=3.0)
        targets = (torch.rand(8, 14) < 0.3).float()
        positives = targets.sum(0)
        w_pos = (8 - positives) / 8 if weighted else torch.ones(14)  # |N| / (|P| + |N|)
        w_neg = positives / 8 if weighted else torch.ones(14)        # |P| / (|P| + |N|)
        loss = -(w_pos * targets * F.logsigmoid(logits) + w_neg * (1 - targets) * F.logsigmoid(-logits)).mean()
        loss.backward()
        save(os.path.join(out, f"bce_{i}.safetensors"),
             {"logits": logits, "targets": targets, "pos_weight": w_pos, "neg_weight": w_neg,
              "loss": loss.reshape(1), "glogits": logits.grad}, {"weighted": int(weighted)})


def pooling_and_linear_cases(out):
    x = leaf(2, 3, 11, 9)
    y = F.max_pool2d(x, 3, 2, 1)
    gy = torch.randn_like(y)
    y.backward(gy)
    save(os.path.join(out, "max_pool2d.safetensors"), {"x": x, "gy": gy, "y": y, "gx": x.grad},
         {"kernel": 3, "stride": 2, "padding": 1})
    x = leaf(2, 3, 8, 6)
    y = F.avg_pool2d(x, 2, 2)
    gy = torch.randn_like(y)
    y.backward(gy)
    save(os.path.join(out, "avg_pool2d.safetensors"), {"x": x, "gy": gy, "y": y, "gx": x.grad},
         {"kernel": 2, "stride": 2})
    x, w, b = leaf(5, 7), leaf(3, 7), leaf(3)
    y = F.linear(x, w, b)
    gy = torch.randn_like(y)
    y.backward(gy)
    save(os.path.join(out, "linear.safetensors"),
         {"x": x, "weight": w, "bias": b, "gy": gy, "y": y, "gx": x.grad, "gweight": w.grad, "gbias": b.grad}, {})


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_torch_references.py OUTPUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(2017)
    torch.set_num_threads(1)
    conv_cases(out)
    batchnorm_cases(out)
    bce_cases(out)
    pooling_and_linear_cases(out)
    print(f"torch {torch.__version__}: references written to {out}")


if __name__ == "__main__":
    main()

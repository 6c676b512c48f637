#!/usr/bin/python3
"""Generates torchvision DenseNet references for chex's model tests, at test time, into a build folder.

Run by CTest as a setup fixture with Debian's python3-torch / python3-torchvision:

    /usr/bin/python3 make_densenet_references.py OUTPUT_DIR NIH_IMAGES_DIR

Writes (nothing generated is committed):
- state_dict_densenet{121,169,201}.json: [name, shape] of densenet*(num_classes=14).state_dict(), in order;
- weights.safetensors: a densenet121(num_classes=14) drawn with a fixed seed, its batch norms given
  non-trivial affine parameters and running statistics (num_batches_tracked stays int64, as in
  torchvision checkpoints);
- eval_random.safetensors, eval_nih.safetensors: eval-mode inputs, features (after norm5 + ReLU) and
  logits at 224x224; the NIH one from real images (RGB, Resize((224, 224)), ImageNet normalisation),
  only when NIH_IMAGES_DIR holds PNGs;
- train_step.safetensors: one training-mode step at 64x64, batch 4: inputs, targets, class weights,
  logits, weighted BCE loss, every parameter's gradient ("grad.<name>"), the same in float64
  ("logits64", "loss64", "grad64.<name>", stored as F32), and every buffer after the step ("after.<name>");
- adam.safetensors: five Adam steps (lr 1e-3) on one batch of 4 at 64x64, the loss before each step,
  in float32 ("losses") and float64 ("losses64").
"""
import glob
import json
import os
import sys

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as transforms
from PIL import Image

from safetensors_writer import save

def state_dict_names(out):
    for name in ("densenet121", "densenet169", "densenet201"):
        model = getattr(torchvision.models, name)(weights=None, num_classes=14)
        entries = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        with open(os.path.join(out, f"state_dict_{name}.json"), "w") as f:
            json.dump(entries, f)


def make_model():
    """densenet121(num_classes=14) with realistic batch-norm state: random affine parameters, and
    running statistics measured on one batch (momentum None = a plain average, here of one batch)."""
    torch.manual_seed(2017)
    model = torchvision.models.densenet121(weights=None, num_classes=14)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.2)
            bn.momentum = None
        model.classifier.bias.normal_(0.0, 0.1)
        model.train()
        model(torch.randn(4, 3, 96, 96))
    for bn in bns:
        bn.momentum = 0.1
    return model


def weighted_bce(logits, targets, w_pos, w_neg):
    return -(w_pos * targets * F.logsigmoid(logits) + w_neg * (1 - targets) * F.logsigmoid(-logits)).mean()


def class_weights(targets):
    """CheXNet's per-class weights from the batch: w+ = |N| / (|P| + |N|), w- = |P| / (|P| + |N|)."""
    n = targets.shape[0]
    positives = targets.sum(0)
    return (n - positives) / n, positives / n


def autocast_bf16_logits(model, x):
    """The logits under PyTorch's CPU bf16 autocast (convolutions and the classifier in bf16)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(x).float()


def eval_cases(out, model, nih_dir):
    model.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 224, 224)
        features = F.relu(model.features(x))
        save(os.path.join(out, "eval_random.safetensors"),
             {"images": x, "features": features, "logits": model(x), "logits_bf16": autocast_bf16_logits(model, x)})
        files = sorted(glob.glob(os.path.join(nih_dir, "*.png")))[:2]
        if files:
            preprocess = transforms.Compose([
                transforms.Resize((224, 224)), transforms.ToTensor(),
                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
            images = [preprocess(Image.open(path).convert("RGB")) for path in files]
            x = torch.stack(images)
            features = F.relu(model.features(x))
            save(os.path.join(out, "eval_nih.safetensors"),
                 {"images": x, "features": features, "logits": model(x), "logits_bf16": autocast_bf16_logits(model, x)},
                 {"files": ",".join(os.path.basename(p) for p in files)})


def train_step_case(out, model):
    """One training step in float32 and, as the exact answer, in float64. In training mode a randomly
    initialised deep network's gradients are ill-conditioned: PyTorch's own float32 gradients differ
    from float64 by up to ~1e-2 for some tensors, so the test compares against both."""
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 64, 64)
    targets = (torch.rand(4, 14) < 0.3).float()
    w_pos, w_neg = class_weights(targets)
    tensors = {"images": x, "targets": targets, "pos_weight": w_pos, "neg_weight": w_neg}
    for dtype, tag in ((torch.float64, "64"), (torch.float32, "")):
        model.load_state_dict(initial)
        m = model.to(dtype)  # converts in place, gradients included: hence the clones below
        m.train()
        m.zero_grad()
        logits = m(x.to(dtype))
        loss = weighted_bce(logits, targets.to(dtype), w_pos.to(dtype), w_neg.to(dtype))
        loss.backward()
        tensors.update({"logits" + tag: logits, "loss" + tag: loss.reshape(1)})
        tensors.update({f"grad{tag}." + n: p.grad.clone() for n, p in m.named_parameters()})
        if dtype == torch.float32:
            tensors.update({"after." + n: b.clone() for n, b in m.named_buffers()})
    # The same step under PyTorch's CPU bf16 autocast (the float32 model: master weights), for how far
    # mixed precision's gradients lie from float32's in this ill-conditioned state.
    model.load_state_dict(initial)
    model.train()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(x)
    weighted_bce(logits.float(), targets, w_pos, w_neg).backward()
    tensors.update({"grad_bf16." + n: p.grad.clone() for n, p in model.named_parameters()})
    save(os.path.join(out, "train_step.safetensors"), tensors)


def adam_case(out, model):
    """Five Adam steps on one batch, in float32 and (for the report) float64."""
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 64, 64)
    targets = (torch.rand(4, 14) < 0.3).float()
    w_pos, w_neg = class_weights(targets)
    tensors = {"images": x, "targets": targets, "pos_weight": w_pos, "neg_weight": w_neg}
    for dtype, tag in ((torch.float64, "64"), (torch.float32, "")):
        model.load_state_dict(initial)
        m = model.to(dtype)
        m.train()
        optimizer = torch.optim.Adam(m.parameters(), lr=1e-3)
        losses = []
        for _ in range(5):
            optimizer.zero_grad()
            loss = weighted_bce(m(x.to(dtype)), targets.to(dtype), w_pos.to(dtype), w_neg.to(dtype))
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        tensors["losses" + tag] = torch.tensor(losses, dtype=torch.float64)
        print(f"PyTorch Adam losses ({dtype}): " + " ".join(f"{v:.6f}" for v in losses))
    save(os.path.join(out, "adam.safetensors"), tensors, {"lr": 1e-3, "steps": 5})


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: make_densenet_references.py OUTPUT_DIR NIH_IMAGES_DIR")
    out, nih_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    state_dict_names(out)
    model = make_model()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    save(os.path.join(out, "weights.safetensors"), initial)
    eval_cases(out, model, nih_dir)
    torch.manual_seed(1)
    train_step_case(out, model)
    model.load_state_dict(initial)
    adam_case(out, model.float())
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}: DenseNet references written to {out}")


if __name__ == "__main__":
    main()

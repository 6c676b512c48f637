#!/usr/bin/python3
"""Generates PyTorch's CheXNet predictions for `chex predict`'s end-to-end tests, at test time.

Into OUTPUT_DIR:
  weights.safetensors   torchvision densenet121(num_classes=14), seeded, with batch-norm statistics
                        gathered on the test images and a classifier scaled so that the
                        probabilities spread over (0, 1); num_batches_tracked stored as I64
  checkpoint.pth.tar    the same weights as arnoweng/CheXNet saves them: {'state_dict': ...} with
                        "module.densenet121." prefixes, legacy "norm.1" names, "classifier.0.", no
                        num_batches_tracked (PyTorch 0.3) -- for apps/convert_checkpoint.py
  state_dict.pth        the plain state_dict, as torch.save(model.state_dict()) writes it
  images/               the test images (links to NIH radiographs from DATA_DIR, grey and RGBA, and
                        a synthetic JPEG) plus a corrupt PNG that chex must skip
  expected_none.csv     PyTorch's probabilities with Resize((224, 224))
  expected_tencrop.csv  ... with Resize(256) + TenCrop(224), probabilities averaged over the crops
                        (three of the images: ten crops cost ten forward passes)

    /usr/bin/python3 make_predict_references.py OUTPUT_DIR DATA_DIR
"""
import os
import shutil
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

from safetensors_writer import save
from torchvision import transforms

LABELS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
          "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]
NORMALIZE = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
PLAIN = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(), NORMALIZE])
TENCROP = transforms.Compose([
    transforms.Resize(256), transforms.TenCrop(224),
    transforms.Lambda(lambda crops: torch.stack([NORMALIZE(transforms.ToTensor()(c)) for c in crops]))])


def arnoweng_checkpoint(state):
    """The state dict as arnoweng/CheXNet's model.pth.tar holds it."""
    out = {}
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        for new, old in (("norm1", "norm.1"), ("relu1", "relu.1"), ("conv1", "conv.1"), ("norm2", "norm.2"),
                         ("relu2", "relu.2"), ("conv2", "conv.2")):
            if ".denselayer" in name:
                name = name.replace("." + new + ".", "." + old + ".")
        name = name.replace("classifier.", "classifier.0.")
        out["module.densenet121." + name] = t.clone()
    return {"epoch": 7, "state_dict": out, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}}


def choose_images(data_dir, out_dir):
    folder = os.path.join(out_dir, "images")
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    nih = os.path.join(data_dir, "nih-sample", "images")
    chosen = {"L": 2, "RGBA": 2}
    if os.path.isdir(nih):
        for name in sorted(os.listdir(nih)):
            mode = Image.open(os.path.join(nih, name)).mode
            if chosen.get(mode, 0) > 0:
                chosen[mode] -= 1
                os.symlink(os.path.abspath(os.path.join(nih, name)), os.path.join(folder, name))
    # A radiograph-like colour JPEG (4:2:0), and an enlarged small grey PNG.
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:300, 0:280]
    field = np.stack([0.5 + 0.4 * np.sin(x / (9.0 + c)) * np.cos(y / 13.0) for c in range(3)], -1)
    field += 0.05 * rng.standard_normal(field.shape)
    Image.fromarray((np.clip(field, 0, 1) * 255).astype(np.uint8), "RGB").save(
        os.path.join(folder, "synthetic_rgb.jpg"), quality=92)
    Image.fromarray((np.clip(field[:180, :200, 0], 0, 1) * 255).astype(np.uint8), "L").save(
        os.path.join(folder, "synthetic_small.png"))
    images = sorted(os.listdir(folder))
    # A PNG cut short: chex names it on stderr, skips it, and exits with status 3.
    with open(os.path.join(folder, "corrupt.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x04\x00\x00\x00\x04\x00\x08\x00\x00\x00\x00")
    return [os.path.join(folder, n) for n in images]


def predict(model, paths, transform, tencrop):
    """(file name, 14 probabilities) per image, in one batched forward pass."""
    views = [transform(Image.open(p).convert("RGB")) for p in paths]
    with torch.no_grad():
        if tencrop:  # arnoweng/CheXNet: the mean of the crops' sigmoid outputs
            probs = torch.sigmoid(model(torch.cat(views))).view(len(paths), 10, -1).mean(1)
        else:
            probs = torch.sigmoid(model(torch.stack(views)))
    return [(os.path.basename(p), row.tolist()) for p, row in zip(paths, probs)]


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("Image Index," + ",".join("prob_" + label for label in LABELS) + "\n")
        for name, probs in rows:
            f.write(name + "," + ",".join(f"{p:.9g}" for p in probs) + "\n")


def main(out_dir, data_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(2017)
    torch.set_num_threads(2)
    paths = choose_images(data_dir, out_dir)
    model = torchvision.models.densenet121(num_classes=14)

    # Batch-norm statistics of the test images (cumulative average), so that eval mode is realistic.
    batch = torch.stack([PLAIN(Image.open(p).convert("RGB")) for p in paths])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(batch)
    model.eval()

    # Classifier rescaled per class so that the logits over these images have spread 1.5 around
    # centres from -2 to 2: probabilities from ~0.05 to ~0.95.
    with torch.no_grad():
        logits = model(batch)
        mean, std = logits.mean(0), logits.std(0).clamp_min(1e-6)
        scale = 1.5 / std
        model.classifier.weight.mul_(scale[:, None])
        model.classifier.bias.copy_((model.classifier.bias - mean) * scale + torch.linspace(-2, 2, 14))

    state = model.state_dict()
    save(os.path.join(out_dir, "weights.safetensors"), state, {"format": "pt"})
    torch.save(arnoweng_checkpoint(state), os.path.join(out_dir, "checkpoint.pth.tar"))
    torch.save(state, os.path.join(out_dir, "state_dict.pth"))
    write_csv(os.path.join(out_dir, "expected_none.csv"), predict(model, paths, PLAIN, False))
    # Ten crops cost ten forward passes: one grey and one RGBA radiograph (when present) and the JPEG.
    first_of_mode = {}
    for p in paths:
        first_of_mode.setdefault(Image.open(p).mode, p)
    tencrop_paths = sorted({first_of_mode.get("L"), first_of_mode.get("RGBA"), first_of_mode["RGB"]} - {None})
    write_csv(os.path.join(out_dir, "expected_tencrop.csv"), predict(model, tencrop_paths, TENCROP, True))
    print(f"torch {torch.__version__}: {len(paths)} images, references in {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

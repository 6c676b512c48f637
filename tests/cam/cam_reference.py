"""Class activation maps computed by PyTorch, to check chex cam's .npy heatmaps against.

  cam_reference.py make REF_DIR IMAGE...   writes REF_DIR/weights.safetensors (a small torchvision
                                           DenseNet with 14 classes, random weights and realistic
                                           batch-norm state) and REF_DIR/<stem>_<Class>.npy, the CAM
                                           of each image and class at the image's original size
  cam_reference.py compare REF_DIR OUT_DIR every reference map against chex's map of the same name
  cam_reference.py not-densenet FILE       a safetensors file that holds no DenseNet (one linear layer)

The reference follows the definition independently of chex: torchvision's features, then ReLU,
M_c = einsum(W_c, f), then F.interpolate(size=(H, W), mode='bilinear', align_corners=False), on
images read with PIL and torchvision's Resize((224, 224)) + ToTensor + Normalize(ImageNet).
Tolerance: |chex - torch| <= 1e-5 * (max - min) of the reference map (float32 through the network;
about 1e-6 is seen).
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from safetensors_writer import save  # noqa: E402

LABELS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
          "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]
PLAIN = transforms.Compose([transforms.Resize((224, 224)), transforms.ToTensor(),
                            transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


def make_model():
    torch.manual_seed(6)
    model = torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16,
                                        bn_size=2, num_classes=14)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.2)
            bn.momentum = None  # running statistics: a plain average over the one batch below
        model.classifier.bias.normal_(0.0, 0.1)
        model.train()
        model(torch.randn(4, 3, 224, 224))
    model.eval()
    return model


def make(ref_dir, images):
    os.makedirs(ref_dir, exist_ok=True)
    model = make_model()
    save(os.path.join(ref_dir, "weights.safetensors"), model.state_dict())
    weight = model.classifier.weight.detach()
    for path in images:
        image = Image.open(path).convert("RGB")
        with torch.no_grad():
            features = F.relu(model.features(PLAIN(image).unsqueeze(0)))
            cams = torch.einsum("ck,nkhw->nchw", weight, features)
            up = F.interpolate(cams, size=(image.height, image.width), mode="bilinear", align_corners=False)[0]
        stem = os.path.splitext(os.path.basename(path))[0]
        for c, label in enumerate(LABELS):
            np.save(os.path.join(ref_dir, f"{stem}_{label}.npy"), up[c].numpy().astype(np.float32))


def compare(ref_dir, out_dir):
    names = sorted(f for f in os.listdir(ref_dir) if f.endswith(".npy"))
    assert names, f"no reference maps in {ref_dir}"
    worst = 0.0
    for name in names:
        want = np.load(os.path.join(ref_dir, name)).astype(np.float64)
        got = np.load(os.path.join(out_dir, name)).astype(np.float64)
        assert got.shape == want.shape, f"{name}: chex {got.shape}, torch {want.shape}"
        scale = want.max() - want.min()
        assert scale > 0, f"{name}: the reference map is constant"
        error = np.abs(got - want).max() / scale
        worst = max(worst, error)
        assert error <= 1e-5, f"{name}: chex differs from torch by {error:.3g} of the map's range"
    print(f"{len(names)} heatmaps match PyTorch's CAM within {worst:.2g} of their range (tolerance 1e-5)")


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "not-densenet":
        save(sys.argv[2], torch.nn.Linear(4, 3).state_dict())
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")

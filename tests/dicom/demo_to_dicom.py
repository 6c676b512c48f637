#!/usr/bin/env python3
"""Rewrites a demo set (chex make-demo) as DICOM: every images/*.png becomes a 12-bit MONOCHROME1
.dcm whose window brings back the PNG's pixels exactly, and the label and split files name the
.dcm files. train_chexnet then trains on DICOM as a user's hospital export would look.

    demo_to_dicom.py DEMO_DIR OUT_DIR
"""
import os
import sys

import numpy as np
from PIL import Image
from pydicom import uid
from pydicom.dataset import FileDataset, FileMetaDataset

DX = "1.2.840.10008.5.1.4.1.1.1.1"


def write_dicom(grey, path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX
    meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    meta.TransferSyntaxUID = uid.ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = DX, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME1"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    # Stored s = 16 * (255 - v); LINEAR_EXACT with center 2040, width 4080 gives f = s / 4080,
    # round(255 f) = 255 - v, and MONOCHROME1 inverts it back to v.
    ds.PixelData = (16 * (255 - grey.astype(np.uint16))).astype(np.uint16).tobytes()
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = "2040", "4080", "LINEAR_EXACT"
    ds.save_as(path, write_like_original=False)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    demo, out = sys.argv[1:]
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(demo, "images"))):
        if name.endswith(".png"):
            grey = np.asarray(Image.open(os.path.join(demo, "images", name)).convert("L"))
            write_dicom(grey, os.path.join(out, "images", name[:-4] + ".dcm"))
    for listing in ("Data_Entry_2017_v2020.csv", "train_val_list.txt", "test_list.txt"):
        source = os.path.join(demo, listing)
        if os.path.exists(source):
            text = open(source).read().replace(".png,", ".dcm,").replace(".png\n", ".dcm\n")
            open(os.path.join(out, listing), "w").write(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""DICOM test files for chex, written with pydicom, and the 8-bit pixels chex must decode them to.

    make_dicom_cases.py OUT_DIR

Writes OUT_DIR/good/<case>.dcm with <case>.expected.pgm (the 8-bit grey image) and <case>.slack.pgm
(1 where the reference fraction lies within 1e-6 of a rounding tie, where +-1 is allowed; 0 elsewhere),
OUT_DIR/bad/<case>.dcm with the phrase chex's error must contain in manifest.json, and
OUT_DIR/same/{same.dcm,same.png}: one image as DICOM and as the PNG of its expected pixels.

The reference pixels are pydicom's own: pixel_array (its RLE and Pillow decoders for the compressed
cases), apply_modality_lut, apply_voi_lut; then the mapping to 8 bits docs/dicom.md states:
f = the VOI output as a fraction of its range (or the min-max of the modality values when the file
has no VOI), v = floor(f * 255 + 0.5), and 255 - v for MONOCHROME1.

Exits 77 (CTest's skip) when pydicom or numpy is missing.
"""
import io
import json
import os
import struct
import sys
import warnings

# pydicom says so when it reads the mislabelled case as implicit VR, as it should.
warnings.filterwarnings("ignore", "Expected explicit VR, but found implicit VR")

try:
    import numpy as np
    import pydicom
    from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
    from pydicom.pixel_data_handlers.util import apply_modality_lut, apply_voi_lut
    from pydicom.sequence import Sequence
    from pydicom import uid
except ImportError as e:
    print(f"SKIPPED: the DICOM tests need python3-pydicom and python3-numpy ({e})")
    sys.exit(77)
try:
    from PIL import Image
except ImportError:
    Image = None

DX = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation


def dataset(pixels, *, photometric="MONOCHROME2", bits_stored=None, signed=False, syntax=uid.ExplicitVRLittleEndian,
            samples=1):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX
    meta.MediaStorageSOPInstanceUID = uid.generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = syntax == uid.ImplicitVRLittleEndian
    ds.SOPClassUID = DX
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    allocated = pixels.dtype.itemsize * 8
    ds.BitsAllocated = allocated
    ds.BitsStored = bits_stored or allocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if samples > 1:
        ds.PlanarConfiguration = 0
    data = pixels.tobytes()
    ds.PixelData = data + b"\0" * (len(data) % 2)  # values have an even length in DICOM
    return ds


def image(rng, shape, low, high, dtype):
    """A gradient with noise over [low, high], so every window case has pixels on both sides."""
    h, w = shape
    ramp = np.linspace(low, high, h * w).reshape(h, w)
    noise = rng.integers(-(high - low) // 16, (high - low) // 16 + 1, size=shape)
    return np.clip(ramp + noise, low, high).astype(dtype)


def voi_lut(count, first, bits, rng):
    """A monotone curve of `count` entries (bits per entry), as a VOI LUT Sequence item."""
    item = Dataset()
    item.LUTDescriptor = [count, first, bits]
    curve = (np.linspace(0, 1, count) ** 0.6) * (2 ** bits - 1)
    item.LUTData = [int(v) for v in np.round(curve)]
    item["LUTData"].VR = "US"
    return item


def y_range(ds):
    """The output range of pydicom's apply_windowing for this data set (its own rule)."""
    if ds.get("ModalityLUTSequence"):
        return 0.0, 2.0 ** ds.ModalityLUTSequence[0].LUTDescriptor[2] - 1
    if ds.PixelRepresentation == 0:
        low, high = 0.0, 2.0 ** ds.BitsStored - 1
    else:
        low, high = -2.0 ** (ds.BitsStored - 1), 2.0 ** (ds.BitsStored - 1) - 1
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        low, high = low * float(ds.RescaleSlope) + float(ds.RescaleIntercept), high * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return low, high


def reference(ds):
    """(expected 8-bit image, slack) from pydicom's decoding and LUT functions."""
    modality = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    if ds.get("VOILUTSequence"):
        # The LUT is indexed by integers: pass them as such (pydicom warns on a float array).
        integral = np.all(modality == np.round(modality))
        out = apply_voi_lut(modality.astype(np.int64) if integral else modality, ds).astype(np.float64)
        fraction = out / (2.0 ** ds.VOILUTSequence[0].LUTDescriptor[2] - 1)
    elif "WindowCenter" in ds:
        low, high = y_range(ds)
        fraction = (apply_voi_lut(modality, ds) - low) / (high - low)
    else:
        span = modality.max() - modality.min()
        fraction = (modality - modality.min()) / span if span > 0 else np.zeros_like(modality)
    scaled = np.clip(fraction, 0, 1) * 255
    v = np.floor(scaled + 0.5)
    slack = (np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6).astype(np.uint8)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        v = 255 - v
    return v.astype(np.uint8), slack


def write_pgm(path, pixels):
    h, w = pixels.shape
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h))
        f.write(pixels.astype(np.uint8).tobytes())


def save(ds, path):
    if getattr(ds, "mislabelled", False):  # implicit VR data under an explicit-VR file meta group
        with open(path, "wb") as f:
            f.write(ds.preamble + b"DICM")
            pydicom.filewriter.write_file_meta_info(pydicom.filebase.DicomFileLike(f), ds.file_meta)
            out = pydicom.filebase.DicomFileLike(f)
            out.is_little_endian, out.is_implicit_VR = True, True
            pydicom.filewriter.write_dataset(out, ds)
        return
    ds.save_as(path, write_like_original=False)


def good_cases(rng):
    shape = (29, 37)  # odd sizes: a stride or row-order mistake shows
    cases = {}

    ds = dataset(image(rng, shape, 3, 250, np.uint8))
    cases["mono2_8bit_minmax"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12)
    ds.WindowCenter, ds.WindowWidth = 2048, 3000
    cases["mono2_12bit_window"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12, photometric="MONOCHROME1")
    ds.WindowCenter, ds.WindowWidth = 1800, 2500
    cases["mono1_12bit_window"] = ds

    ds = dataset(image(rng, shape, 100, 60000, np.uint16), photometric="MONOCHROME1")
    cases["mono1_16bit_minmax"] = ds

    ds = dataset(image(rng, shape, 0, 65535, np.uint16))
    ds.RescaleSlope, ds.RescaleIntercept = "0.5", "-100"
    ds.WindowCenter, ds.WindowWidth = "16000", "20001"
    cases["mono2_16bit_rescale_window"] = ds

    ds = dataset(image(rng, shape, -32768, 32767, np.int16), signed=True)
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    ds.WindowCenter, ds.WindowWidth = "40", "4000"
    cases["mono2_16bit_signed_rescale_window"] = ds

    ds = dataset(image(rng, shape, -2048, 2047, np.int16), bits_stored=12, signed=True)
    cases["mono2_12bit_signed_minmax"] = ds

    ds = dataset(image(rng, shape, -2048, 2047, np.int16), bits_stored=12, signed=True, photometric="MONOCHROME1")
    ds.RescaleSlope, ds.RescaleIntercept = "2", "10"
    cases["mono1_12bit_signed_rescale_minmax"] = ds

    ds = dataset(image(rng, shape, -128, 127, np.int8), signed=True)
    ds.WindowCenter, ds.WindowWidth = "0", "200"
    cases["mono2_8bit_signed_window"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12)
    ds.VOILUTSequence = Sequence([voi_lut(4096, 0, 16, rng)])
    cases["mono2_12bit_voi_lut"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12, photometric="MONOCHROME1")
    ds.VOILUTSequence = Sequence([voi_lut(1500, 1000, 12, rng)])  # clamped below 1000 and above 2499
    ds.WindowCenter, ds.WindowWidth = 100, 50  # ignored: the LUT wins
    cases["mono1_12bit_voi_lut_clamped_over_window"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = "2047.5", "3001", "LINEAR_EXACT"
    cases["mono2_12bit_window_linear_exact"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12)
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = "2000", "1500", "SIGMOID"
    cases["mono2_12bit_window_sigmoid"] = ds

    ds = dataset(image(rng, shape, 0, 1023, np.uint16), bits_stored=10)
    item = Dataset()
    item.LUTDescriptor = [1024, 0, 16]
    item.LUTData = [int(v) for v in (np.linspace(0, 1, 1024) ** 2 * 65535).round()]
    item["LUTData"].VR = "US"
    item.ModalityLUTType = "US"
    ds.ModalityLUTSequence = Sequence([item])
    ds.WindowCenter, ds.WindowWidth = "30000", "50000"
    cases["mono2_10bit_modality_lut_window"] = ds

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12, syntax=uid.ImplicitVRLittleEndian)
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    cases["mono2_12bit_implicit_vr"] = ds

    ds = dataset(image(rng, shape, 0, 255, np.uint8), photometric="MONOCHROME1", syntax=uid.ImplicitVRLittleEndian)
    cases["mono1_8bit_implicit_vr"] = ds  # 8-bit pixel data read as OW, the implicit VR's default

    ds = dataset(image(rng, shape, 0, 4095, np.uint16), bits_stored=12)
    ds.WindowCenter, ds.WindowWidth = 1000, 2000
    ds.mislabelled = True
    cases["mono2_12bit_implicit_vr_labelled_explicit"] = ds

    # Compressed: RLE by pydicom's own encoder (decoded by pydicom's RLE handler for the reference).
    for name, pixels, bits in (("rle_16bit", image(rng, shape, 0, 65535, np.uint16), 16),
                               ("rle_12bit_mono1", image(rng, shape, 0, 4095, np.uint16), 12),
                               ("rle_8bit", image(rng, shape, 0, 255, np.uint8), 8)):
        ds = dataset(pixels, bits_stored=bits, photometric="MONOCHROME1" if "mono1" in name else "MONOCHROME2")
        ds.compress(uid.RLELossless)
        cases[name] = ds

    # JPEG baseline: an 8-bit grey JPEG made by Pillow, encapsulated; the reference is pydicom's
    # Pillow decoder, chex's is DCMTK's IJG decoder (both the "islow" IDCT).
    if Image is not None:
        pixels = image(rng, (64, 48), 0, 255, np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "L").save(buffer, "JPEG", quality=90)
        ds = dataset(pixels, syntax=uid.JPEGBaseline8Bit)
        ds.PixelData = pydicom.encaps.encapsulate([buffer.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.WindowCenter, ds.WindowWidth = 128, 256
        cases["jpeg_baseline_8bit"] = ds
    else:
        print("note: python3-pil is missing: the JPEG baseline case is not tested")
    return cases


def bad_cases(rng, good_dir):
    """(name, bytes or dataset, phrase the error must contain)."""
    shape = (16, 16)
    out = []
    whole = open(os.path.join(good_dir, "mono2_12bit_window.dcm"), "rb").read()
    out.append(("truncated_in_pixels", whole[: len(whole) - 300], "truncated"))
    out.append(("truncated_in_header", whole[:200], "truncated"))
    out.append(("not_part10", whole[132:], "not a PNG, JPEG or DICOM file"))

    ds = dataset(image(rng, shape, 0, 255, np.uint8))
    del ds.PixelData
    out.append(("no_pixel_data", ds, "no pixel data"))

    ds = dataset(np.zeros((3,) + shape, np.uint16), bits_stored=12)
    ds.Rows, ds.Columns = shape
    ds.NumberOfFrames = 3
    out.append(("multi_frame", ds, "3 frames"))

    ds = dataset(np.zeros(shape + (3,), np.uint8), photometric="RGB", samples=3)
    out.append(("rgb", ds, "colour (RGB)"))

    ds = dataset(np.zeros(shape, np.uint16), syntax=uid.JPEG2000Lossless)
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 60])
    ds["PixelData"].VR = "OB"
    out.append(("jpeg2000", ds, "JPEG 2000"))

    ds = dataset(np.zeros(shape, np.uint16), bits_stored=12)
    ds.PixelData = ds.PixelData[:100]
    out.append(("short_pixel_data", ds, "truncated"))

    # Well-formed up to pixel data that declares 2 GB and holds 16 bytes (DCMTK alone would
    # allocate the 2 GB before finding the end of the file).
    ds = dataset(image(rng, shape, 0, 255, np.uint8))
    del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer, write_like_original=False)
    lying = buffer.getvalue() + b"\xe0\x7f\x10\x00OB\0\0" + struct.pack("<I", 0x7FFFFFF0) + b"x" * 16
    out.append(("lying_length", lying, "truncated"))

    # Sequences nested 40 deep (each of undefined length, in an item of undefined length).
    nested = b"\x40\x00\x30\xa7SQ\0\0\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff" * 40
    out.append(("deep_nesting", buffer.getvalue() + nested, "nests sequences more than"))
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    rng = np.random.default_rng(19)
    for sub in ("good", "bad", "same"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    good_dir = os.path.join(root, "good")
    manifest = {"good": [], "bad": []}
    for name, ds in good_cases(rng).items():
        path = os.path.join(good_dir, name + ".dcm")
        save(ds, path)
        reread = pydicom.dcmread(path)  # the reference decodes the file as written
        expected, slack = reference(reread)
        write_pgm(os.path.join(good_dir, name + ".expected.pgm"), expected)
        write_pgm(os.path.join(good_dir, name + ".slack.pgm"), slack)
        manifest["good"].append({"name": name, "ties": int(slack.sum())})
    for name, content, phrase in bad_cases(rng, good_dir):
        path = os.path.join(root, "bad", name + ".dcm")
        if isinstance(content, bytes):
            open(path, "wb").write(content)
        else:
            save(content, path)
        manifest["bad"].append({"name": name, "phrase": phrase})

    # One radiograph as DICOM and as the PNG of its expected pixels (chex predict must agree).
    ds = dataset(image(rng, (200, 180), 0, 4095, np.uint16), bits_stored=12, photometric="MONOCHROME1")
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-50"
    ds.WindowCenter, ds.WindowWidth = "1900", "3500"
    same = os.path.join(root, "same", "same.dcm")
    save(ds, same)
    expected, _ = reference(pydicom.dcmread(same))
    manifest["same_png"] = Image is not None
    if Image is not None:
        Image.fromarray(expected, "L").save(os.path.join(root, "same", "same.png"))
    with open(os.path.join(root, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"wrote {len(manifest['good'])} good and {len(manifest['bad'])} bad DICOM files to {root}")


if __name__ == "__main__":
    main()

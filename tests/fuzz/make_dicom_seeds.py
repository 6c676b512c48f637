#!/usr/bin/python3
"""Writes fuzz_dicom's seeds into tests/fuzz/corpus/dicom/: the DICOM files of
tests/dicom/make_dicom_cases.py (valid ones as seed-*, the bad ones as regress-*), each without its
128-byte preamble and "DICM" (fuzz_dicom puts those back). The JPEG lossless and JPEG-LS
seeds (seed-jpeg-lossless-*, seed-jpeg-ls-*) come from the test chex_dicom_tests instead, which
compresses some of those files with DCMTK's encoders into BUILD/tests/dicom/cases/compressed/ (no
Debian Python package writes them); they too are committed without their first 132 bytes.
Run once by hand (Debian's
python3-pydicom, python3-numpy, python3-pil); the outputs are committed.

    /usr/bin/python3 tests/fuzz/make_dicom_seeds.py
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    out = os.path.join(HERE, "corpus", "dicom")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, os.path.join(HERE, "..", "dicom", "make_dicom_cases.py"), work], check=True)
        for kind, prefix in (("good", "seed-"), ("bad", "regress-dicom-")):
            for name in sorted(os.listdir(os.path.join(work, kind))):
                if not name.endswith(".dcm"):
                    continue
                data = open(os.path.join(work, kind, name), "rb").read()
                if data[128:132] != b"DICM":
                    continue  # not a Part 10 file: fuzz_dicom could not express it
                with open(os.path.join(out, prefix + name[:-4]), "wb") as f:
                    f.write(data[132:])


if __name__ == "__main__":
    main()

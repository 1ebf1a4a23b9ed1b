#!/usr/bin/python3
"""Small photos in the formats real folders hold (CMYK and progressive JPEG, grey JPEG, 16-bit
grey and RGB PNG, palette PNG), each with Pillow's decode as an 8-bit RGB
reference PNG: tests/test_image.cpp decodes them with Ember and compares, and test_catdog.cpp
puts them in a data folder. Run with Debian's Pillow:

    /usr/bin/python3 tests/golden/make_photo_formats.py

The photos are generated, so nothing here comes from a data set. Deterministic."""
import os
import struct
import zlib

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "photo_formats")
W, H = 24, 16


def smooth_rgb():
    # Smooth gradients: JPEG decoders (Pillow's libjpeg, Ember's stb) then agree within a few levels.
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([x * 10, y * 15, 40 + (x + y) * 4], -1).clip(0, 255).astype(np.uint8)


def write_png16(path, arr):
    # Pillow cannot write 16-bit RGB; a minimal PNG writer (colour type 2, bit depth 16).
    h, w, c = arr.shape
    raw = b"".join(b"\x00" + arr[r].astype(">u2").tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    os.makedirs(OUT, exist_ok=True)
    rgb = smooth_rgb()
    im = Image.fromarray(rgb, "RGB")
    im.convert("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=95)  # Adobe APP14, 4 components
    im.save(os.path.join(OUT, "progressive.jpg"), quality=95, progressive=True)
    im.convert("L").save(os.path.join(OUT, "grey.jpg"), quality=95)
    y, x = np.mgrid[0:H, 0:W]
    grey16 = (x * 2500 + y * 300).astype(np.uint16)
    Image.fromarray(grey16).save(os.path.join(OUT, "grey16.png"))
    rgb16 = np.stack([x * 2700, y * 4000, 65535 - x * 2000], -1).astype(np.uint16)
    write_png16(os.path.join(OUT, "rgb16.png"), rgb16)
    im.convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(OUT, "palette.png"))

    # References: what a photo "decoded correctly" means, as 8-bit RGB.
    refs = {
        "cmyk.jpg": np.asarray(Image.open(os.path.join(OUT, "cmyk.jpg")).convert("RGB")),
        "progressive.jpg": np.asarray(Image.open(os.path.join(OUT, "progressive.jpg")).convert("RGB")),
        "grey.jpg": np.asarray(Image.open(os.path.join(OUT, "grey.jpg")).convert("RGB")),
        # 16-bit: the high byte (Pillow's convert("RGB") of mode I clips at 255 instead, so
        # torchvision's ImageFolder sees a 16-bit grey photo as almost white).
        "grey16.png": np.repeat((grey16 >> 8).astype(np.uint8)[..., None], 3, -1),
        "rgb16.png": (rgb16 >> 8).astype(np.uint8),
        # Palette (16 colours): the palette's colours. (Transparency is io/image.hpp's business:
        # tests/test_image.cpp "transparent backgrounds never turn into black ink".)
        "palette.png": np.asarray(Image.open(os.path.join(OUT, "palette.png")).convert("RGB")),
    }
    for name, arr in refs.items():
        Image.fromarray(np.ascontiguousarray(arr), "RGB").save(os.path.join(OUT, name + ".ref.png"))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()

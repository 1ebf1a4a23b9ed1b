#!/usr/bin/python3
"""Golden images for ember::vision's image ops (tests/test_image_ops.cpp): what torchvision 0.14's
functional transforms do to PIL images, which is what the cat/dog tutorial's ImageFolder feeds them.

Run with Debian's python3-torchvision:  /usr/bin/python3 tests/golden/make_image_golden.py
Writes tests/golden/image_ops/{input_rgb,input_gray,<case>}.png and cases.json.
"""
import json
import os

import numpy as np
from PIL import Image
import torchvision
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "image_ops")
os.makedirs(OUT, exist_ok=True)

# A 53x41 RGB picture with smooth gradients, a saturated disc, edges and noise: every op has
# something to act on (hue needs colour, contrast a spread of levels, rotation sharp edges).
rng = np.random.default_rng(7)
H, W = 41, 53
y, x = np.mgrid[0:H, 0:W]
r = 255 * x / (W - 1)
g = 255 * y / (H - 1)
b = 128 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)
disc = (x - 30) ** 2 + (y - 18) ** 2 < 81
r[disc], g[disc], b[disc] = 230, 40, 60
r[5:9, :] = 20
rgb = np.stack([r, g, b], -1) + rng.normal(0, 6, (H, W, 3))
rgb = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
img = Image.fromarray(rgb, "RGB")
gray = img.convert("L")
img.save(os.path.join(OUT, "input_rgb.png"))
gray.save(os.path.join(OUT, "input_gray.png"))

B = InterpolationMode.BILINEAR
cases = []


def case(name, op, args, fn, src="rgb"):
    inp = img if src == "rgb" else gray
    out = fn(inp)
    out.save(os.path.join(OUT, name + ".png"))
    cases.append({"name": name, "op": op, "args": args, "input": "input_%s.png" % src, "output": name + ".png"})


for s in (20, 30, 70):
    case("resize_%d" % s, "resize_int", [s], lambda im, s=s: F.resize(im, s, interpolation=B))
case("resize_17x23", "resize_hw", [17, 23], lambda im: F.resize(im, [17, 23], interpolation=B))
case("resize_gray_25", "resize_int", [25], lambda im: F.resize(im, 25, interpolation=B), "gray")
case("center_crop_20x15", "center_crop", [20, 15], lambda im: F.center_crop(im, [20, 15]))
case("center_crop_30x30", "center_crop", [30, 30], lambda im: F.center_crop(im, [30, 30]))
case("center_crop_pad_45x60", "center_crop", [45, 60], lambda im: F.center_crop(im, [45, 60]))
case("crop_outside", "crop", [-3, 40, 20, 25], lambda im: F.crop(im, -3, 40, 20, 25))
case("resized_crop", "resized_crop", [3, 5, 30, 37, 24, 24], lambda im: F.resized_crop(im, 3, 5, 30, 37, [24, 24], interpolation=B))
case("hflip", "hflip", [], lambda im: F.hflip(im))
for a in (15.0, -12.5, 7.3, 90.0, 180.0, 33.0):
    case("rotate_%s" % str(a).replace("-", "m").replace(".", "p"), "rotate", [a, 0], lambda im, a=a: F.rotate(im, a))
case("rotate_fill", "rotate", [-20.0, 200], lambda im: F.rotate(im, -20.0, fill=[200, 200, 200]))
case("rotate_gray", "rotate", [11.0, 0], lambda im: F.rotate(im, 11.0), "gray")
for f in (0.99, 1.01, 0.5, 1.7):
    case("brightness_%s" % str(f).replace(".", "p"), "adjust_brightness", [f], lambda im, f=f: F.adjust_brightness(im, f))
for f in (0.99, 1.01, 0.3, 1.8):
    case("contrast_%s" % str(f).replace(".", "p"), "adjust_contrast", [f], lambda im, f=f: F.adjust_contrast(im, f))
case("contrast_gray_1p5", "adjust_contrast", [1.5], lambda im: F.adjust_contrast(im, 1.5), "gray")
for f in (0.99, 1.01, 0.0, 2.0):
    case("saturation_%s" % str(f).replace(".", "p"), "adjust_saturation", [f], lambda im, f=f: F.adjust_saturation(im, f))
for f in (0.01, -0.01, 0.3, -0.45, 0.0):
    case("hue_%s" % str(f).replace("-", "m").replace(".", "p"), "adjust_hue", [f], lambda im, f=f: F.adjust_hue(im, f))

with open(os.path.join(OUT, "cases.json"), "w") as fp:
    json.dump({"generator": "tests/golden/make_image_golden.py", "torchvision": torchvision.__version__,
               "pil": Image.__version__, "cases": cases}, fp, indent=1)
print("wrote", len(cases), "cases to", OUT)

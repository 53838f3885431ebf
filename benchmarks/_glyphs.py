"""Many-class glyph images from the fonts installed here: data the defaults were not tuned on.

Classes are characters of alphabetic scripts (Latin, Greek, Cyrillic, Armenian, Georgian,
Hebrew, IPA letters), rendered in every face of every TrueType family under
``/usr/share/fonts`` that has the glyph (on Debian: the DejaVu faces), each centred and
scaled into the image with a small seeded affine jitter (scale +-10%, shift +-1.5 px,
rotation +-6 degrees). A character whose image in the first face is within cosine 0.95 of
an already kept character's (Latin ``A`` and Greek ``Alpha``, ``o`` and ``omicron``) is left
out, so no two classes share a shape. Columns ``px_0`` ... ``px_{S*S-1}`` (ink 1, floats in
[0, 1]) and ``label``, as the Hangul set's.

Written for ``unseen_classes.py --data glyphs``; PIL draws the glyphs.
"""

from __future__ import annotations

import csv
import glob
import gzip

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RANGES = [
    (0x41, 0x5A), (0x61, 0x7A),  # Latin
    (0x391, 0x3A9), (0x3B1, 0x3C9),  # Greek
    (0x410, 0x44F),  # Cyrillic
    (0x531, 0x556), (0x561, 0x586),  # Armenian
    (0x10D0, 0x10F0),  # Georgian
    (0x5D0, 0x5EA),  # Hebrew
    (0x250, 0x2AF),  # IPA
]  # fmt: skip
RENDER = 64  # drawn at this size, then reduced


def _faces() -> list[ImageFont.FreeTypeFont]:
    paths = sorted(glob.glob("/usr/share/fonts/**/*.ttf", recursive=True))
    return [ImageFont.truetype(p, RENDER) for p in paths if "Math" not in p]


def _draw(face, char: str) -> np.ndarray | None:
    """The glyph's ink, cropped to its box (None when the face lacks it)."""
    if face.getmask(char).getbbox() is None:
        return None
    image = Image.new("L", (2 * RENDER, 2 * RENDER), 0)
    ImageDraw.Draw(image).text((RENDER // 2, RENDER // 4), char, font=face, fill=255)
    box = image.getbbox()
    return None if box is None else np.asarray(image.crop(box), np.float32) / 255.0


def _missing(face) -> np.ndarray | None:
    return _draw(face, "\ue000")  # a private-use point: the face's "no glyph" box


def _place(ink: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """``ink`` scaled into ``side x side`` (longer edge 80% of it), jittered."""
    h, w = ink.shape
    scale = 0.8 * side / max(h, w) * rng.uniform(0.9, 1.1)
    angle = rng.uniform(-6, 6)
    glyph = Image.fromarray((ink * 255).astype(np.uint8))
    glyph = glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    glyph = glyph.rotate(angle, resample=Image.BILINEAR, expand=True)
    canvas = Image.new("L", (side, side), 0)
    x = round((side - glyph.width) / 2 + rng.uniform(-1.5, 1.5))
    y = round((side - glyph.height) / 2 + rng.uniform(-1.5, 1.5))
    canvas.paste(glyph, (x, y))
    return np.asarray(canvas, np.float32) / 255.0


def write_glyphs(path: str, side: int = 28, classes: int = 300, seed: int = 0) -> dict:
    """Writes the data set (gzipped CSV) to ``path``; returns its shape."""
    faces = _faces()
    missing = [_missing(f) for f in faces]
    rng = np.random.default_rng(seed)
    kept: list[tuple[str, np.ndarray]] = []
    for lo, hi in RANGES:
        for code in range(lo, hi + 1):
            ink = _draw(faces[0], chr(code))
            if ink is None:
                continue
            probe = _place(ink, side, np.random.default_rng(0)).ravel()
            probe /= np.linalg.norm(probe) + 1e-9
            if any(float(probe @ other) > 0.95 for _, other in kept):
                continue
            kept.append((chr(code), probe))
    chars = [c for c, _ in kept][:classes]
    rows, labelled = 0, set()
    with gzip.open(path, "wt", newline="") as f:
        out = csv.writer(f)
        out.writerow([*(f"px_{i}" for i in range(side * side)), "label"])
        for label, char in enumerate(chars):
            for face, none in zip(faces, missing, strict=True):
                ink = _draw(face, char)
                if ink is None or (
                    none is not None and ink.shape == none.shape and np.allclose(ink, none)
                ):
                    continue
                pixels = _place(ink, side, rng).ravel()
                out.writerow([*(f"{v:.3f}" for v in pixels), label])
                rows += 1
                labelled.add(label)
    return {"classes": len(labelled), "rows": rows, "faces": len(faces), "side": side}

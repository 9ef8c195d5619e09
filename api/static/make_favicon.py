"""Draw geo-eval's favicon (``favicon.ico`` beside this file): dev time only, standard library only.

A blue rounded square (the login button's #1f6feb) holding four land parcels, three white and one
amber (a flagged parcel), at 16 × 16 and 32 × 32 pixels, PNG-compressed inside one ICO file.
``tests/test_pages.py`` checks that the file served at ``/favicon.ico`` is what this script draws.

    python api/static/make_favicon.py          # rewrite favicon.ico
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

BLUE = (0x1F, 0x6F, 0xEB)
WHITE = (0xFF, 0xFF, 0xFF)
AMBER = (0xF5, 0xA5, 0x24)
SIZES = (16, 32)
SUPERSAMPLE = 4
PARCELS = (  # (x0, y0, x1, y1) in units of the icon's side, and the colour
    ((0.19, 0.19, 0.47, 0.47), WHITE),
    ((0.53, 0.19, 0.81, 0.47), WHITE),
    ((0.19, 0.53, 0.47, 0.81), WHITE),
    ((0.53, 0.53, 0.81, 0.81), AMBER),
)
CORNER = 0.2


def _inside_square(u: float, v: float) -> bool:
    """Whether (u, v) lies in the rounded square [0, 1]² with corner radius CORNER."""
    cu = min(max(u, CORNER), 1 - CORNER)
    cv = min(max(v, CORNER), 1 - CORNER)
    return (u - cu) ** 2 + (v - cv) ** 2 <= CORNER**2


def _colour_at(u: float, v: float) -> tuple[int, int, int] | None:
    if not _inside_square(u, v):
        return None
    for (x0, y0, x1, y1), colour in PARCELS:
        if x0 <= u < x1 and y0 <= v < y1:
            return colour
    return BLUE


def pixels(size: int) -> bytes:
    """RGBA rows of the icon at ``size`` × ``size``, anti-aliased by supersampling."""
    out = bytearray()
    n = SUPERSAMPLE
    for y in range(size):
        for x in range(size):
            samples = [
                _colour_at((x + (i + 0.5) / n) / size, (y + (j + 0.5) / n) / size) for j in range(n) for i in range(n)
            ]
            hits = [s for s in samples if s is not None]
            if not hits:
                out += bytes(4)
                continue
            rgb = [round(sum(c[k] for c in hits) / len(hits)) for k in range(3)]
            out += bytes([*rgb, round(255 * len(hits) / len(samples))])
    return bytes(out)


def png(size: int) -> bytes:
    """The icon at ``size`` as a PNG file (8-bit RGBA, no filter)."""
    raw = pixels(size)
    rows = b"".join(b"\x00" + raw[y * size * 4 : (y + 1) * size * 4] for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def ico(sizes: tuple[int, ...] = SIZES) -> bytes:
    """An ICO file holding the icon at each of ``sizes`` (PNG entries)."""
    images = [png(s) for s in sizes]
    offset = 6 + 16 * len(images)
    head = struct.pack("<HHH", 0, 1, len(images))
    entries = b""
    for size, image in zip(sizes, images, strict=True):
        entries += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(image), offset)
        offset += len(image)
    return head + entries + b"".join(images)


if __name__ == "__main__":
    target = Path(__file__).with_name("favicon.ico")
    target.write_bytes(ico())
    print(f"{target}: {target.stat().st_size} bytes")  # noqa: T201

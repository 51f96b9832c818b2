"""Image sizes from headers, and PIL's pixel limit while anything decodes.

An image's pixel size is a few bytes in its header, but decoding it costs
width x height x channels bytes: a 3 KB PNG can declare 12000 x 12000 px and
take 1.5 GB to decode. So every image is measured from its header first
(PIL's Image.open is lazy: ``.size`` reads only the header) and refused over
the limit, and while trimesh loads and exports, PIL refuses to open anything
larger still, in case an image reaches it by a way the checks did not see.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from scenes.report import Problem


@contextmanager
def pixel_limit(pixels: int | None) -> Iterator[None]:
    """While inside, PIL refuses to open an image of more than ``pixels`` pixels (None: no limit).

    PIL warns over MAX_IMAGE_PIXELS and raises only over twice that; the warning
    is made an error so the limit is exact. Both settings are process-wide,
    which is why ingest runs one package per process.
    """
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = before


def header_size(source: Path | bytes) -> tuple[int, int] | None:
    """Width and height from the image's header, without decoding it; None if it is no image PIL reads."""
    with pixel_limit(None):
        try:
            with Image.open(source if isinstance(source, Path) else io.BytesIO(source)) as image:
                return image.size
        except Exception:  # PIL raises many types for what is not an image
            return None


def size_problem(where: str, size: tuple[int, int], max_pixels: int) -> Problem | None:
    """A refusal for an image over ``max_pixels``, saying how large it is."""
    width, height = size
    if width * height <= max_pixels:
        return None
    side = int(max_pixels**0.5)
    return Problem(
        where,
        f"is {width}x{height} px ({width * height} px), over the limit of {max_pixels} px for one image",
        f"resize it (at most {side}x{side} px) and save it again",
    )

"""Preprocessing contract: RGB, whole-image bicubic resize (PIL (W,H) order), (x-127)/128."""

import numpy as np
import pytest
from PIL import Image

from rexjax.models import labels, preprocess


def test_non_square_resize_orientation_and_values(tmp_path):
    # left half red, right half blue, 40 wide x 20 high; resize to H=10, W=30
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20, 0] = 255
    arr[:, 20:, 2] = 255
    p = tmp_path / "rb.png"
    Image.fromarray(arr).save(p)
    x = preprocess.load_image(p, (10, 30))
    assert x.shape == (10, 30, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0], [[128 / 128, -127 / 128, -127 / 128]] * 10, atol=1e-6)
    np.testing.assert_allclose(x[:, -1], [[-127 / 128, -127 / 128, 128 / 128]] * 10, atol=1e-6)
    # same as doing it by hand with PIL
    ref = (np.asarray(Image.fromarray(arr).resize((30, 10), Image.Resampling.BICUBIC), np.float32) - 127) / 128
    np.testing.assert_array_equal(x, ref)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK"])
def test_modes_become_rgb(mode):
    im = Image.new("RGB", (16, 12), (200, 100, 50)).convert(mode)
    x = preprocess.load_image(im, 8)
    assert x.shape == (8, 8, 3)
    np.testing.assert_allclose(x, preprocess.load_image(im.convert("RGB"), 8))


def test_inverse_round_trip():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)
    x = preprocess.load_image(img, (9, 7))  # same size: resize is the identity
    np.testing.assert_array_equal(preprocess.to_uint8(x), img)
    pp = preprocess.Preprocess((9, 7))
    np.testing.assert_array_equal(pp.inverse(pp(img)), img)


def test_not_an_image_names_the_file(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("not an image")
    with pytest.raises(ValueError, match="notes.jpg"):
        preprocess.load_image(p, 224)
    with pytest.raises(ValueError, match="missing.jpg"):
        preprocess.load_image(tmp_path / "missing.jpg", 224)
    with pytest.raises(ValueError, match="size"):
        preprocess.load_image(Image.new("RGB", (4, 4)), 0)
    with pytest.raises(ValueError, match="uint8"):
        preprocess.load_image(np.zeros((4, 4, 3), np.float32), 4)


def test_imagenet_labels():
    full = labels.imagenet_labels()
    short = labels.imagenet_short_labels()
    assert len(full) == len(short) == 1000
    assert short[301] == "ladybug" and short[84] == "peacock" and short[404] == "airliner"
    assert full[752].startswith("racket") and short[752] == "racket"

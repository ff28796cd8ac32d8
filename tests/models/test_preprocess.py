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


# --- the ReX tool's generic pipeline: channels, --norm, --means, --stds ----------------------

TWO_BY_TWO = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [51, 102, 153]]], np.uint8)


def test_tool_pipeline_hand_computed():
    """x / norm, then (x - mean) / std per channel, on a 2x2 image (same size: no resampling).
    Catches the normaliser dropped, mean and std swapped or applied before / norm, and
    channels mixed up: every value below is worked out by hand."""
    pp = preprocess.Preprocess((2, 2), mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0), norm=255)
    want = [[[1.0, -1.0, 0.0], [-1.0, 3.0, 0.0]],
            [[-1.0, -1.0, 0.5], [-0.6, 0.6, 0.3]]]  # 51/255 = 0.2 -> (0.2 - 0.5) / 0.5, ...
    np.testing.assert_allclose(pp(TWO_BY_TWO), want, atol=1e-6)
    assert pp(TWO_BY_TWO).dtype == np.float32


def test_grey_model_converts_with_luma_and_has_one_channel():
    """channels=1: an RGB image becomes PIL "L" (ITU-R 601 luma: pure red is 76, not 255 or
    85), a grey image stays as it is; catches a conversion that takes one channel or the mean."""
    pp = preprocess.Preprocess((2, 2), mean=0.2, std=0.4, channels=1, norm=255)
    grey = np.array([[0, 51], [102, 255]], np.uint8)
    np.testing.assert_allclose(pp(grey)[..., 0], [[-0.5, 0.0], [0.5, 2.0]], atol=1e-6)
    assert pp(grey).shape == (2, 2, 1)
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    np.testing.assert_allclose(pp(red)[..., 0], (76 / 255 - 0.2) / 0.4, atol=1e-6)
    np.testing.assert_array_equal(pp(np.repeat(grey[..., None], 3, -1)), pp(grey))  # grey RGB -> the same grey


def test_rgba_model_keeps_alpha_and_gives_rgb_images_alpha_255(tmp_path):
    """channels=4: an RGBA file keeps its alpha (read through `io.open_image(path, "RGBA")`),
    an RGB image gets alpha 255; an RGB model drops the alpha silently."""
    rgba = np.concatenate([TWO_BY_TWO, np.array([[[0], [255]], [[128], [255]]], np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    pp = preprocess.Preprocess((2, 2), mean=(0, 0, 0, 0.5), std=(1, 1, 1, 0.5), channels=4, norm=255)
    x = pp(tmp_path / "a.png")
    assert x.shape == (2, 2, 4)
    np.testing.assert_allclose(x[..., 3], [[-1.0, 1.0], [128 / 255 / 0.5 - 1, 1.0]], atol=1e-6)
    np.testing.assert_allclose(x[..., :3], TWO_BY_TWO / 255, atol=1e-6)
    np.testing.assert_allclose(pp(TWO_BY_TWO)[..., 3], 1.0)
    rgb = preprocess.Preprocess((2, 2), mean=0, std=1, norm=255)(tmp_path / "a.png")
    np.testing.assert_allclose(rgb, TWO_BY_TWO / 255, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_inverse_displays_rgb_for_every_channel_count(channels):
    """inverse() undoes norm, mean and std and returns uint8[H,W,3] (grey repeated, alpha
    dropped); catches the norm left out of the inverse and a 1- or 4-channel image passed on."""
    rng = np.random.default_rng(channels)
    mode = preprocess.MODES[channels]
    img = rng.integers(0, 256, (5, 4, 4), dtype=np.uint8)
    pil = Image.fromarray(img, "RGBA").convert(mode)
    pp = preprocess.Preprocess((5, 4), mean=(0.3,) * channels, std=(0.2,) * channels, channels=channels, norm=255)
    shown = pp.inverse(pp(pil))
    assert shown.shape == (5, 4, 3) and shown.dtype == np.uint8
    np.testing.assert_array_equal(shown, np.asarray(pil.convert("RGB")))


def test_describe_shows_the_tool_pipeline():
    pp = preprocess.Preprocess((224, 224), mean=(0.498,) * 3, std=(0.502,) * 3, norm=255)
    assert pp.describe() == ("whole image -> 224x224 bicubic, x / 255, "
                             "(x - (0.498, 0.498, 0.498)) / (0.502, 0.502, 0.502)")
    grey = preprocess.Preprocess((28, 28), mean=0.0, std=1.0, channels=1, norm=255)
    assert grey.describe() == "whole image -> 28x28 bicubic, grey (L), x / 255, (x - 0) / 1"
    assert preprocess.Preprocess((9, 7)).describe() == "whole image -> 9x7 bicubic, (x - 127) / 128"


@pytest.mark.parametrize("kwargs,text", [
    ({"mean": (0.1, 0.2)}, "mean must be one number or one per channel (3)"),
    ({"std": (1.0,) * 3, "channels": 4}, "std must be one number or one per channel (4)"),
    ({"std": 0.0}, "std must be finite and non-zero"),
    ({"mean": float("nan")}, "mean must be finite"),
    ({"channels": 2}, "channels must be 1 (grey), 3 (RGB) or 4 (RGBA)"),
    ({"norm": 0}, "norm must be a finite number > 0"),
    ({"norm": float("inf")}, "norm must be a finite number > 0"),
])
def test_bad_preprocess_fields_name_the_field(kwargs, text):
    with pytest.raises(ValueError) as err:
        preprocess.Preprocess((4, 4), **kwargs)
    assert text in str(err.value)

"""rexjax.data: image listing and segmentation loading."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rexjax import data


def _image(path: Path, hw=(6, 8), value=128):
    Image.fromarray(np.full(hw + (3,), value, np.uint8)).save(path)
    return path


def test_list_images_folder_sorted_known_suffixes_only(tmp_path):
    for name in ("b.png", "A.JPEG", "c.jpg", "d.Bmp"):
        _image(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()  # a folder named like an image is not one
    (tmp_path / "sub.png" / "e.png").write_bytes(b"")  # nor is its content listed (not recursive)
    got = data.list_images(tmp_path)
    assert [p.name for p in got] == ["A.JPEG", "b.png", "c.jpg", "d.Bmp"]
    assert all(isinstance(p, Path) for p in got)


def test_list_images_single_file(tmp_path):
    f = _image(tmp_path / "x.png")
    assert data.list_images(str(f)) == [f]


@pytest.mark.parametrize("case", ["missing", "empty", "not_image"])
def test_list_images_errors(tmp_path, case):
    if case == "missing":
        path, match = tmp_path / "nope", "no such file or folder"
    elif case == "empty":
        (tmp_path / "readme.txt").write_text("x")
        path, match = tmp_path, "holds no images"
    else:
        path = tmp_path / "readme.txt"
        path.write_text("x")
        match = "is not an image file"
    with pytest.raises(ValueError, match=match):
        data.list_images(path)


def test_find_segment(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    seg = np.zeros((4, 4), np.uint8)
    Image.fromarray(seg).save(masks / "cat.bmp")
    Image.fromarray(seg).save(masks / "cat.png")
    Image.fromarray(seg).save(masks / "dog.gif")
    assert data.find_segment(masks, "imgs/cat.jpg") == masks / "cat.png"  # .png first
    assert data.find_segment(str(masks), Path("dog.JPEG")) == masks / "dog.gif"
    assert data.find_segment(masks, "bird.jpg") is None
    assert data.find_segment(None, "cat.jpg") is None
    with pytest.raises(ValueError, match="masks must be a folder"):
        data.find_segment(tmp_path / "absent", "cat.jpg")


def test_read_segment_nonzero_nearest_and_hw_order(tmp_path):
    seg = np.array([[0, 255], [1, 0]], np.uint8)  # any nonzero grey level is segment
    Image.fromarray(seg).save(tmp_path / "s.png")
    got = data.read_segment(tmp_path / "s.png", (4, 6))
    assert got.dtype == bool and got.shape == (4, 6)
    want = np.repeat(np.repeat(seg > 0, 2, axis=0), 3, axis=1)  # nearest: whole blocks, no blending
    np.testing.assert_array_equal(got, want)


def test_read_segment_colour_image(tmp_path):
    rgb = np.zeros((3, 3, 3), np.uint8)
    rgb[1, 1] = (0, 0, 200)  # a coloured pixel is segment, black is not
    Image.fromarray(rgb).save(tmp_path / "c.png")
    got = data.read_segment(tmp_path / "c.png", (3, 3))
    want = np.zeros((3, 3), bool)
    want[1, 1] = True
    np.testing.assert_array_equal(got, want)


def test_load_segment_and_folder_layout(tmp_path):
    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    imgs.mkdir(), masks.mkdir()
    _image(imgs / "a.jpg"), _image(imgs / "b.jpg")
    Image.fromarray(np.full((2, 2), 9, np.uint8)).save(masks / "a.png")
    seg = data.load_segment(masks, imgs / "a.jpg", (3, 5))
    assert seg.shape == (3, 5) and seg.all()
    assert data.load_segment(masks, imgs / "b.jpg", (3, 5)) is None
    assert data.load_segment(None, imgs / "a.jpg", (3, 5)) is None
    samples = data.folder(imgs, masks)
    assert samples == [data.Sample(imgs / "a.jpg", masks / "a.png"), data.Sample(imgs / "b.jpg", None)]
    assert [s.name for s in samples] == ["a.jpg", "b.jpg"]
    assert data.folder(imgs) == [data.Sample(imgs / "a.jpg"), data.Sample(imgs / "b.jpg")]


# --- data-set layouts ----------------------------------------------------------------------
from tests.experiments import layouts as L  # noqa: E402


@pytest.mark.parametrize("segmentation", ["object", "class"])
def test_voc2012_palette_index_not_background_not_void(tmp_path, segmentation):
    root = L.make_voc(tmp_path / "VOC2012")
    samples = data.load("voc2012", root, image_set="val", segmentation=segmentation)
    sub = "SegmentationObject" if segmentation == "object" else "SegmentationClass"
    assert [s.image for s in samples] == [root / "JPEGImages" / "2008_000001.jpg", root / "JPEGImages" / "2008_000002.jpg"]
    assert [s.segment for s in samples] == [root / sub / "2008_000001.png", root / sub / "2008_000002.png"]
    # the object (index 1 or 2) is segment; the void border (255) and background (0) are not
    np.testing.assert_array_equal(data.read_segment(samples[1].segment, L.HW), L.object_mask())
    # resized with the image (nearest): the model's pixels
    got = data.read_segment(samples[0].segment, (16, 24))
    np.testing.assert_array_equal(got, np.repeat(np.repeat(L.object_mask(), 2, 0), 2, 1))


def test_voc2012_errors(tmp_path):
    root = L.make_voc(tmp_path / "VOC2012")
    (root / "SegmentationObject" / "2008_000002.png").unlink()
    with pytest.raises(ValueError, match="2008_000002.png' is missing"):
        data.voc2012(root)
    with pytest.raises(ValueError, match="image_set must be a text file"):
        data.voc2012(root, image_set="train")
    with pytest.raises(ValueError, match="segmentation must be one of"):
        data.voc2012(root, segmentation="parts")


def test_ecssd_binary_masks(tmp_path):
    root = L.make_ecssd(tmp_path / "ECSSD")
    samples = data.load("ecssd", root)
    assert [s.name for s in samples] == ["0001.jpg", "0002.jpg"]
    np.testing.assert_array_equal(data.read_segment(samples[0].segment, L.HW), L.object_mask())
    (root / "ground_truth_mask" / "0002.png").unlink()
    with pytest.raises(ValueError, match="no mask .* for \\['0002.jpg'\\]"):
        data.ecssd(root)


def test_imagenet_val_index_and_synset_labels(tmp_path):
    images, labels = L.make_imagenet(tmp_path, {"ILSVRC2012_val_00000001": "n00000002 1 2 3 4",
                                                "ILSVRC2012_val_00000002": "n00000001"},
                                     header="ImageId,PredictionString")
    synsets = tmp_path / "synsets.txt"
    synsets.write_text("n00000001 tench, Tinca tinca\nn00000002 goldfish\n")
    samples = data.load("imagenet_val", images, labels=labels, synsets=synsets)
    assert [(s.name, s.label) for s in samples] == [("ILSVRC2012_val_00000001.JPEG", 1), ("ILSVRC2012_val_00000002.JPEG", 0)]
    with pytest.raises(ValueError, match="pass synsets="):
        data.imagenet_val(images, labels)
    (tmp_path / "idx.txt").write_text("ILSVRC2012_val_00000001.JPEG 417\nILSVRC2012_val_00000002 3\n")
    assert [s.label for s in data.imagenet_val(images, tmp_path / "idx.txt")] == [417, 3]
    (tmp_path / "short.txt").write_text("ILSVRC2012_val_00000001 417\n")
    with pytest.raises(ValueError, match="no label for image 'ILSVRC2012_val_00000002.JPEG'"):
        data.imagenet_val(images, tmp_path / "short.txt")
    (tmp_path / "bad.txt").write_text("a 1\nb cat\n")
    with pytest.raises(ValueError, match="line 2"):
        data.read_labels(tmp_path / "bad.txt")


def test_load_unknown_layout(tmp_path):
    with pytest.raises(ValueError, match="layout must be one of"):
        data.load("coco", tmp_path)

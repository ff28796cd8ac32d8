"""Benchmarks report the validation set by default and name the set every number comes from."""

from benchmarks import image_sets


def test_sets_are_named_by_folder(tmp_path):
    assert image_sets.describe(image_sets.VALIDATION) == "validation set (third_party/validation)"
    assert image_sets.describe(image_sets.VALIDATION / "china.jpg").startswith("validation set")
    assert image_sets.describe(image_sets.TUNING / "ladybird.jpg").startswith("tuning set")
    assert image_sets.describe(tmp_path).startswith("other images")
    # the two sets share no photo (a validation photo copied into the tuning set would leak)
    tuning = {p.read_bytes() for p in image_sets.TUNING.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")}
    validation = [p for p in image_sets.VALIDATION.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert len(validation) >= 5 and not any(p.read_bytes() in tuning for p in validation)


def test_compare_and_frontier_default_to_validation_and_screen_to_tuning():
    from benchmarks import compare, frontier, screen

    assert compare.DEFAULT_IMAGES == frontier.DEFAULT_IMAGES == image_sets.VALIDATION
    assert screen.DEFAULT_IMAGES == image_sets.TUNING

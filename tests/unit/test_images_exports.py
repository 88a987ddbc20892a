import berth.images


def test_public_surface() -> None:
    assert sorted(berth.images.__all__) == ["Image", "ImageStore", "ImageUser", "apply_changes", "apply_xattrs"]
    for name in berth.images.__all__:
        assert getattr(berth.images, name).__module__.startswith("berth.images")

import berth.images


def test_public_surface() -> None:
    assert sorted(berth.images.__all__) == ["Image", "ImageStore", "ImageUser"]
    for name in berth.images.__all__:
        assert getattr(berth.images, name).__module__.startswith("berth.images")

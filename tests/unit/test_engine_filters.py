"""Docker filter semantics shared by ps, volume/network ls, events and the prunes (pure)."""

from __future__ import annotations


def test_label_values_must_all_hold_other_keys_are_alternatives() -> None:
    from berth.engine.filters import label_matches, matches

    labels = {"a": "1", "b": "2"}

    def one(key: str, value: str) -> bool:
        return label_matches(labels, value) if key == "label" else value == "x"

    assert matches({"label": ["a", "b=2"]}, one)
    assert not matches({"label": ["a", "c"]}, one)          # both must hold (moby's MatchKVList)
    assert not matches({"label": ["a=2"]}, one)
    assert matches({"name": ["y", "x"]}, one)               # alternatives
    assert not matches({"name": ["y"], "label": ["a"]}, one)
    assert matches({"label": []}, one) and matches({}, one)

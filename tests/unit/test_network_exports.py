import berth.network


def test_public_surface() -> None:
    assert sorted(berth.network.__all__) == [
        "Attachment",
        "BridgeConfig",
        "NetworkManager",
        "PortMapping",
        "parse_port_spec",
        "remove_shared_chains",
    ]
    for name in berth.network.__all__:
        assert getattr(berth.network, name).__module__.startswith("berth.network")

import berth.network


def test_public_surface() -> None:
    assert sorted(berth.network.__all__) == [
        "Attachment",
        "BUILTIN",
        "BridgeConfig",
        "EmbeddedDns",
        "Endpoint",
        "EndpointManager",
        "IsolatedBridge",
        "NameEntry",
        "NameTable",
        "NetworkIsolation",
        "NetworkManager",
        "NetworkRegistry",
        "PortMapping",
        "UserNetwork",
        "parse_mac",
        "parse_port_spec",
        "remove_shared_chains",
        "set_mac",
    ]
    for name in berth.network.__all__:
        if name == "BUILTIN":
            continue
        assert getattr(berth.network, name).__module__.startswith("berth.network")

from berth.network._hostnet import filter_removal_plan, nat_removal_plan

NAT_IDLE = [
    "-P PREROUTING ACCEPT",
    "-N CNI-HOSTPORT-DNAT",
    "-N CNI-HOSTPORT-MASQ",
    "-N CNI-HOSTPORT-SETMARK",
    "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
    '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
    "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
    (
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark"'
        " -j MARK --set-xmark 0x2000/0x2000"
    ),
]
FILTER_IDLE = [
    "-N CNI-ADMIN",
    "-N CNI-FORWARD",
    '-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD',
    '-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN',
]


def test_idle_nat_chains_are_unhooked_then_deleted() -> None:
    plan = nat_removal_plan(NAT_IDLE)
    assert plan[:3] == [
        ["-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
        ["-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
        [
            "-D",
            "POSTROUTING",
            "-m",
            "comment",
            "--comment",
            "CNI portfwd requiring masquerade",
            "-j",
            "CNI-HOSTPORT-MASQ",
        ],
    ]
    assert plan[-3:] == [
        ["-X", "CNI-HOSTPORT-DNAT"],
        ["-X", "CNI-HOSTPORT-SETMARK"],
        ["-X", "CNI-HOSTPORT-MASQ"],
    ]


def test_nat_chains_in_use_stay() -> None:
    busy = NAT_IDLE + [
        "-N CNI-DN-abc",
        "-A CNI-HOSTPORT-DNAT -p tcp -m multiport --dports 80 -j CNI-DN-abc",
    ]
    assert nat_removal_plan(busy) == []
    assert nat_removal_plan(NAT_IDLE + ["-N CNI-DN-abc"]) == []
    assert nat_removal_plan(["-P PREROUTING ACCEPT"]) == []


def test_idle_filter_chains_go_but_not_with_container_rules_or_admin_overrides() -> None:
    plan = filter_removal_plan(FILTER_IDLE)
    assert plan[0][:2] == ["-D", "FORWARD"] and ["-X", "CNI-ADMIN"] in plan
    assert filter_removal_plan(FILTER_IDLE + ["-A CNI-FORWARD -s 10.1.0.2/32 -j ACCEPT"]) == []
    assert filter_removal_plan(FILTER_IDLE + ["-A CNI-ADMIN -s 10.9.0.0/16 -j DROP"]) == []

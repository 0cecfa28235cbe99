"""Network and storage in the IT energy (issue 16 item 2): the fat tree's tiers and watts by hand,
storage energy, the rows summing into energy_it_mwh, the tdp convention untouched, the energy split
and the catalog schema's errors."""

from pathlib import Path

import pytest

from hardware_catalog import CatalogError, load_catalog, parse_toml_text
from hardware_catalog.loader import infrastructure_defaults, parse_infrastructure_text
from simulator import estimate, load_scenario, scenario_from_dict
from simulator.footprint.energy_split import (
    SPLIT_GROUPS,
    energy_split,
    energy_split_kwh,
    split_group,
)
from simulator.footprint.infrastructure import NO_FABRIC, fabric, fat_tree_tiers

ROOT = Path(__file__).parents[2]
EXAMPLES = [p for p in sorted((ROOT / "examples").glob("*.toml")) if not p.name.startswith("project-")]
CAT = load_catalog(use_env=False)
H100 = {"port_gbit_per_s": 400, "switch_ports": 64, "switch_w": 747.0, "optics_w_per_port": 8.5}


def base(**over):
    d = {
        "model": {"preset": "llama3-8b"},
        "training": {"tokens": 1e12, "global_batch_tokens": 4 * 1024 * 1024},
        "cluster": {"accelerator": "nvidia-h100-sxm-80gb", "devices": 256},
        "datacenter": {"region": "US", "pue": 1.2},
    }
    for k, v in over.items():
        d[k] = {**d.get(k, {}), **v}
    return scenario_from_dict(d)


def rows(est):
    return {r["component"]: r["energy_kwh"] for r in est.breakdown}


@pytest.mark.parametrize(("links", "radix", "tiers"), [
    (1, 64, 1), (64, 64, 1), (65, 64, 2), (2048, 64, 2), (2049, 64, 3), (65536, 64, 3), (65537, 64, 4),
    (4, 4, 1), (5, 4, 2), (8, 4, 2), (9, 4, 3), (16, 4, 3), (17, 4, 4),
])
def test_fat_tree_tiers_at_their_boundaries(links, radix, tiers):
    """t tiers of radix k connect 2 (k/2)^t: 64, 2,048, 65,536 for k = 64."""
    assert fat_tree_tiers(links, radix) == tiers


@pytest.mark.parametrize(("devices", "nic", "switches", "w_per_device"), [
    # 1 tier: 64 ports, 1 switch: (747 + 64 x 8.5) / 64
    (64, 400, 1, (747 + 64 * 8.5) / 64),
    # 2 tiers: 3 ports per link = 6,144 ports, 96 switches: (96 x 747 + 6,144 x 8.5) / 2,048
    (2048, 400, 96, (96 * 747 + 6144 * 8.5) / 2048),
    # 3 tiers: 5 ports per link = 20,480 ports, 320 switches
    (4096, 400, 320, (320 * 747 + 20480 * 8.5) / 4096),
    # 800 Gb/s per device: 2 links each, the 2,048-link leaf-spine shared by 1,024 devices
    (1024, 800, 96, (96 * 747 + 6144 * 8.5) / 1024),
    # 200 Gb/s per device: half a link each; 16 devices use 8 ports of one switch
    (16, 200, 1, (747 + 8 * 8.5) / 16),
])
def test_fabric_watts_by_hand(devices, nic, switches, w_per_device):
    fab = fabric(devices, 8, nic, **H100)
    assert fab.switches == switches
    assert fab.w_per_device == pytest.approx(w_per_device, rel=1e-12)


def test_no_fabric_inside_one_scale_up_domain_or_without_a_nic():
    assert fabric(8, 8, 400, **H100) == NO_FABRIC
    assert fabric(72, 72, 400, **H100) == NO_FABRIC  # one NVL72 rack
    assert fabric(4096, 8, None, **H100) == NO_FABRIC
    assert fabric(9, 8, 400, **H100).tiers == 1


def test_network_and_storage_rows_by_hand():
    """The default H100 cluster of 256: one leaf-spine (2 tiers, 768 ports, 12 switches) and
    256 x 9.77 TB of storage at 1,300 W per PB, both over the whole wall clock."""
    est = estimate(base(), CAT)
    wall_h = est.wall_clock_days * 24
    net_w = (12 * 747 + 256 * 3 * 8.5) / 256
    storage_w = 256 * 9.77 / 1e3 * 1300
    assert rows(est)["network"] == pytest.approx(256 * net_w * wall_h / 1e3, rel=1e-9)
    assert rows(est)["storage"] == pytest.approx(storage_w * wall_h / 1e3, rel=1e-9)
    assert any("2-tier fat tree" in a and "12 switches" in a for a in est.assumptions)


def test_scenario_keys_replace_network_and_storage():
    est = estimate(base(datacenter={"network_w_per_device": 50.0, "storage_pb": 10.0, "storage_w_per_pb": 1000.0}), CAT)
    wall_h = est.wall_clock_days * 24
    assert rows(est)["network"] == pytest.approx(256 * 50.0 * wall_h / 1e3, rel=1e-9)
    assert rows(est)["storage"] == pytest.approx(10 * 1000.0 * wall_h / 1e3, rel=1e-9)
    zero = estimate(base(datacenter={"network_w_per_device": 0.0, "storage_pb": 0.0}), CAT)
    assert rows(zero)["network"] == 0.0 and rows(zero)["storage"] == 0.0
    # the rest of the IT energy does not move; PUE applies to the new rows
    assert (est.energy_it_mwh - zero.energy_it_mwh) * 1e3 == pytest.approx(rows(est)["network"] + rows(est)["storage"])
    assert est.energy_mwh - zero.energy_mwh == pytest.approx(1.2 * (est.energy_it_mwh - zero.energy_it_mwh))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_rows_sum_into_it_and_facility_energy(path):
    est = estimate(load_scenario(path), CAT)
    r = rows(est)
    assert {"host", "network", "storage", "facility_overhead"} <= set(r)
    it_kwh = sum(v for k, v in r.items() if k != "facility_overhead")
    assert it_kwh == pytest.approx(est.energy_it_mwh * 1e3, rel=1e-9)
    assert it_kwh + r["facility_overhead"] == pytest.approx(est.energy_mwh * 1e3, rel=1e-9)
    assert r["facility_overhead"] == pytest.approx(it_kwh * (est.values["pue"] - 1), rel=1e-9, abs=1e-9)


def test_tdp_convention_unchanged():
    """device-hours x TDP x PUE: no host, network or storage (Touvron et al. 2023 Table 15)."""
    sc = base(training={"device_hours": 1e6}, datacenter={"power_model": "tdp", "storage_pb": 100.0},
              reliability={"failures_per_device_hour": 0.0})
    est = estimate(sc, CAT)
    assert est.energy_mwh == pytest.approx(1e6 * 700 * 1.2 / 1e6, rel=1e-9)
    assert rows(est)["network"] == 0.0 and rows(est)["storage"] == 0.0 and rows(est)["host"] == 0.0
    assert not any(a.startswith(("network:", "storage:")) for a in est.assumptions)


def test_serving_and_rlhf_carry_the_rows():
    serving = estimate(load_scenario(next(p for p in EXAMPLES if p.stem == "llama3-70b-serving")), CAT)
    rlhf = estimate(load_scenario(next(p for p in EXAMPLES if p.stem == "llama3-8b-grpo")), CAT)
    for est in (serving, rlhf):
        assert rows(est)["storage"] > 0
        assert sum(rows(est).values()) == pytest.approx(est.energy_mwh * 1e3, rel=1e-9)


def test_energy_split_by_hand():
    breakdown = [{"component": "compute", "energy_kwh": 60.0}, {"component": "dp_comm", "energy_kwh": 10.0},
                 {"component": "checkpoint_and_failures", "energy_kwh": 2.0}, {"component": "host", "energy_kwh": 12.0},
                 {"component": "network", "energy_kwh": 4.0}, {"component": "storage", "energy_kwh": 2.0},
                 {"component": "facility_overhead", "energy_kwh": 10.0}, {"component": "embodied", "energy_kwh": 0.0},
                 {"component": "electricity", "energy_kwh": 0.0}]
    assert energy_split_kwh(breakdown) == {"accelerators": 72.0, "hosts": 12.0, "network": 4.0, "storage": 2.0,
                                           "facility_overhead": 10.0}
    share = energy_split(breakdown)
    assert tuple(share) == SPLIT_GROUPS
    assert share == pytest.approx({"accelerators": 0.72, "hosts": 0.12, "network": 0.04, "storage": 0.02,
                                   "facility_overhead": 0.10})
    assert sum(share.values()) == pytest.approx(1.0)
    assert energy_split([]) == dict.fromkeys(SPLIT_GROUPS, 0.0)
    assert split_group("rollout_generation") == "accelerators" and split_group("idle_capacity") == "accelerators"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_energy_split_of_an_estimate_sums_to_one(path):
    est = estimate(load_scenario(path), CAT)
    share = energy_split(est)
    assert sum(share.values()) == pytest.approx(1.0)
    assert share["facility_overhead"] == pytest.approx(1 - est.energy_it_mwh / est.energy_mwh, rel=1e-9, abs=1e-12)


def _h100_with(network_table: str) -> str:
    text = (ROOT / "hardware_catalog/accelerators/nvidia-h100-sxm-80gb.toml").read_text()
    return text.replace('id = "nvidia-h100-sxm-80gb"', 'id = "my-h100"\noverride = true').replace(
        'aliases = ["h100", "h100-sxm", "nvidia-h100-sxm5-80gb"]', "aliases = []") + network_table


NET = ('\n[network]\nname = "my fabric"\nswitch_ports = { value = K, source = "my datasheet" }\n'
       'port_gbit_per_s = { value = 400, source = "my datasheet" }\nswitch_w = { value = 500, source = "my datasheet" }\n'
       'optics_w_per_port = { value = 5, source = "my datasheet" }\n')


@pytest.mark.parametrize("k", [63, 2, 64.5])
def test_malformed_network_section_names_the_field(k):
    with pytest.raises(CatalogError, match=r"my\.toml: network\.switch_ports: .*even number of switch ports"):
        parse_toml_text(_h100_with(NET.replace("K", str(k))), "my.toml")


def test_network_section_without_a_source_or_with_a_typo_is_refused():
    with pytest.raises(CatalogError, match=r"network\.switch_w\.source: every catalog number needs a source"):
        parse_toml_text(_h100_with(NET.replace("K", "64").replace(', source = "my datasheet" }\noptics', ' }\noptics')), "my.toml")
    with pytest.raises(CatalogError, match=r"storage\.w_per_tb: unknown key"):
        parse_infrastructure_text('[network]\nname = "x"\n[storage]\nw_per_tb = { value = 1, source = "abc" }\n', "infra.toml")


def test_an_accelerators_own_network_replaces_the_default():
    acc = parse_toml_text(_h100_with(NET.replace("K", "64")), "my.toml")[0]
    cat = CAT.with_entries([(acc, "my.toml")])
    est = estimate(base(cluster={"accelerator": "my-h100", "devices": 64}), cat)
    wall_h = est.wall_clock_days * 24
    assert rows(est)["network"] == pytest.approx((500 + 64 * 5) * wall_h / 1e3, rel=1e-9)


def test_shipped_defaults_carry_sources():
    infra = infrastructure_defaults()
    for section in (infra.network, infra.storage):
        for _, v in section:
            if hasattr(v, "source"):
                assert len(v.source) > 10
    assert infra.network.switch_ports.value == 64 and infra.network.switch_w.verified is False


def test_a_users_infrastructure_file_replaces_the_defaults_only_with_override():
    text = (ROOT / "hardware_catalog/infrastructure.toml").read_text().replace("value = 1300", "value = 2600")
    with pytest.raises(CatalogError, match=r"mine\.toml: the network and storage defaults are already defined"):
        CAT.with_entries([(e, "mine.toml") for e in parse_toml_text(text, "mine.toml")])
    text = text.replace("schema_version = 1", "schema_version = 1\noverride = true")
    cat = CAT.with_entries([(e, "mine.toml") for e in parse_toml_text(text, "mine.toml")])
    assert rows(estimate(base(), cat))["storage"] == pytest.approx(2 * rows(estimate(base(), CAT))["storage"], rel=1e-9)

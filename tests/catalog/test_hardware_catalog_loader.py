"""Loader and schema behaviour on user input: clear CatalogErrors naming the file and field,
overlay precedence, `override = true`, and the TRAINSIM_CATALOG environment variable."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import hardware_catalog
from hardware_catalog import CatalogError, load_catalog, parse_file
from hardware_catalog.loader import ENV_VAR

PKG = Path(hardware_catalog.__file__).parent
H100_TEXT = (PKG / "accelerators" / "nvidia-h100-sxm-80gb.toml").read_text(encoding="utf-8")
H100_ORIGIN = "hardware_catalog/accelerators/nvidia-h100-sxm-80gb.toml"

REGION_TEXT = """schema_version = 1
[[region]]
id = "{id}"
name = "{name}"
kind = "subnational"
{extra}
carbon_intensity_kg_per_kwh = {{ value = {ci}, source = "utility disclosure 2024", as_of = "2024" }}
pue = {{ value = 1.3, source = "facility metering 2024" }}
wue_l_per_kwh = {{ value = 0.5, source = "facility metering 2024" }}
"""


def accel_text(acc_id: str = "acme-x1", aliases: str = '["acme"]', override: bool = False) -> str:
    """A valid accelerator file derived from the shipped H100 file, with a new id and aliases."""
    text = H100_TEXT.replace('id = "nvidia-h100-sxm-80gb"', f'id = "{acc_id}"', 1)
    text = re.sub(r"^aliases = .*$", f"aliases = {aliases}", text, count=1, flags=re.M)
    text = text.replace('name = "NVIDIA H100 SXM5 80GB"', f'name = "Test {acc_id}"', 1)
    if override:
        text = text.replace('kind = "gpu"', 'kind = "gpu"\noverride = true', 1)
    assert f'id = "{acc_id}"' in text
    return text


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_valid_overlay_adds_an_accelerator(tmp_path):
    write(tmp_path, "x1.toml", accel_text())
    cat = load_catalog([tmp_path])
    assert cat.accelerator("ACME").id == "acme-x1"
    assert cat.origins["accelerator:acme-x1"] == str(tmp_path / "x1.toml")
    assert cat.accelerator("h100").id == "nvidia-h100-sxm-80gb"  # packaged entries still there


def test_missing_source_names_file_and_field(tmp_path):
    text = re.sub(r'(tdp_w = \{ value = 700), source = "[^"]*"', r"\1", accel_text())
    assert "tdp_w = { value = 700 }" in text
    path = write(tmp_path, "nosource.toml", text)
    with pytest.raises(CatalogError) as exc:
        parse_file(path)
    msg = str(exc.value)
    assert str(path) in msg
    assert "power.tdp_w.source" in msg
    assert "needs a source" in msg


def test_bare_number_is_rejected(tmp_path):
    text = re.sub(r"^launch_year = .*$", "launch_year = 2022", accel_text(), count=1, flags=re.M)
    with pytest.raises(CatalogError, match=r"launch_year"):
        load_catalog([write(tmp_path, "bare.toml", text)])


def test_unknown_key_is_rejected(tmp_path):
    text = accel_text().replace("[power]\n", '[power]\ntdp_watts = { value = 700, source = "typo test" }\n', 1)
    path = write(tmp_path, "typo.toml", text)
    with pytest.raises(CatalogError) as exc:
        load_catalog([path])
    msg = str(exc.value)
    assert str(path) in msg and "power.tdp_watts" in msg and "unknown key" in msg


def test_unknown_key_in_sourced_value_is_rejected(tmp_path):
    text = accel_text().replace('hbm_gb = { value = 80,', 'hbm_gb = { value = 80, unit = "GB",', 1)
    with pytest.raises(CatalogError, match=r"memory\.hbm_gb\.unit: unknown key"):
        load_catalog([write(tmp_path, "unit.toml", text)])


def test_idle_at_or_above_tdp_is_rejected(tmp_path):
    text = re.sub(r"idle_w = \{ value = 90,", "idle_w = { value = 700,", accel_text())
    path = write(tmp_path, "idle.toml", text)
    with pytest.raises(CatalogError) as exc:
        load_catalog([path])
    msg = str(exc.value)
    assert str(path) in msg and "idle_w" in msg and "tdp_w" in msg


@pytest.mark.parametrize("bad", ["0", "-5", "inf", "nan"])
def test_non_positive_or_non_finite_values_are_rejected(tmp_path, bad):
    text = accel_text().replace("hbm_tb_per_s = { value = 3.35,", f"hbm_tb_per_s = {{ value = {bad},", 1)
    with pytest.raises(CatalogError, match=r"memory\.hbm_tb_per_s\.value"):
        load_catalog([write(tmp_path, "bad.toml", text)])


def test_fraction_above_one_is_rejected(tmp_path):
    text = accel_text().replace("hfu_at_tdp = { value = 0.70,", "hfu_at_tdp = { value = 70,", 1)
    with pytest.raises(CatalogError, match=r"efficiency\.hfu_at_tdp is a fraction"):
        load_catalog([write(tmp_path, "hfu.toml", text)])


def test_an_older_file_with_the_unread_mfu_prior_still_loads(tmp_path):
    """`[efficiency] mfu` was an informational prior no model read; a user's file that has it loads (the
    value is checked as a fraction and ignored), so nothing the user wrote stops working."""
    mfu = 'mfu = { value = 0.40, source = "an older catalog file" }\n'
    text = accel_text().replace("[efficiency]\n", "[efficiency]\n" + mfu, 1)
    assert mfu in text
    acc = load_catalog([write(tmp_path, "old.toml", text)]).accelerator("acme-x1")
    assert acc.efficiency.mfu.value == 0.40
    with pytest.raises(CatalogError, match=r"efficiency\.mfu is a fraction"):
        load_catalog([write(tmp_path, "bad.toml", text.replace("value = 0.40,", "value = 40,", 1))])


def test_missing_bf16_peak_is_rejected(tmp_path):
    text = re.sub(r"^bf16 = .*\n", "", accel_text(), count=1, flags=re.M)
    with pytest.raises(CatalogError, match=r"peak_tflops_dense\.bf16 is required"):
        load_catalog([write(tmp_path, "nobf16.toml", text)])


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, "broken.toml", "id = \n")
    with pytest.raises(CatalogError, match=re.escape(str(path)) + r".*not valid TOML"):
        load_catalog([path])


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(CatalogError, match=r"no such file or folder"):
        load_catalog([tmp_path / "does-not-exist"])


def test_unknown_accelerator_suggests_nearest():
    cat = load_catalog()
    with pytest.raises(CatalogError) as exc:
        cat.accelerator("h10")
    msg = str(exc.value)
    assert "unknown accelerator 'h10'" in msg and "did you mean" in msg and "'h100'" in msg


def test_unknown_region_suggests_nearest():
    with pytest.raises(CatalogError, match=r"unknown region 'us-virgina'.*'us-virginia'"):
        load_catalog().region("us-virgina")


def test_duplicate_id_without_override_names_both_files(tmp_path):
    path = write(tmp_path, "dup.toml", accel_text(acc_id="nvidia-h100-sxm-80gb", aliases="[]"))
    with pytest.raises(CatalogError) as exc:
        load_catalog([path])
    msg = str(exc.value)
    assert str(path) in msg and H100_ORIGIN in msg and "override = true" in msg


def test_duplicate_id_between_two_user_files_names_both(tmp_path):
    a = write(tmp_path / "a", "x1.toml", accel_text())
    b = write(tmp_path / "b", "x1-again.toml", accel_text(aliases="[]"))
    with pytest.raises(CatalogError) as exc:
        load_catalog([tmp_path / "a", tmp_path / "b"])
    msg = str(exc.value)
    assert str(a) in msg and str(b) in msg


def test_override_replaces_entry(tmp_path):
    text = accel_text(acc_id="nvidia-h100-sxm-80gb", aliases='["h100", "our-h100"]', override=True)
    text = text.replace("idle_w = { value = 90,", "idle_w = { value = 72,", 1)
    path = write(tmp_path, "ours.toml", text)
    cat = load_catalog([path])
    acc = cat.accelerator("h100")
    assert acc.id == "nvidia-h100-sxm-80gb"
    assert acc.power.idle_w.value == 72
    assert acc.name == "Test nvidia-h100-sxm-80gb"
    assert cat.accelerator("our-h100") is acc
    assert cat.origins["accelerator:nvidia-h100-sxm-80gb"] == str(path)
    assert load_catalog().accelerator("h100").power.idle_w.value == 90  # packaged catalog untouched


def test_region_duplicate_and_override(tmp_path):
    dup = write(tmp_path / "d", "fr.toml", REGION_TEXT.format(id="FR", name="Mine", extra="", ci=0.03))
    with pytest.raises(CatalogError) as exc:
        load_catalog([dup])
    assert "hardware_catalog/regions/countries.toml" in str(exc.value) and str(dup) in str(exc.value)
    ok = write(tmp_path / "o", "fr.toml", REGION_TEXT.format(id="FR", name="Mine", extra="override = true", ci=0.03))
    cat = load_catalog([ok])
    assert cat.region("FR").carbon_intensity_kg_per_kwh.value == 0.03
    assert cat.region("fr").name == "Mine"


def test_alias_clash_with_existing_name_is_an_error(tmp_path):
    path = write(tmp_path, "clash.toml", accel_text(aliases='["H100"]'))
    with pytest.raises(CatalogError) as exc:
        load_catalog([path])
    msg = str(exc.value)
    assert str(path) in msg and H100_ORIGIN in msg and "'h100'" in msg


def test_env_var_overlay(tmp_path, monkeypatch):
    acc_dir = tmp_path / "accs"
    reg_dir = tmp_path / "regs"
    write(acc_dir, "x1.toml", accel_text())
    write(reg_dir, "mine.toml", REGION_TEXT.format(id="my-dc", name="Our DC", extra='aliases = ["ourdc"]', ci=0.21))
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(acc_dir), str(reg_dir)]))
    cat = load_catalog()
    assert cat.accelerator("acme-x1").name == "Test acme-x1"
    assert cat.region("ourdc").carbon_intensity_kg_per_kwh.value == 0.21
    assert cat.origins["region:my-dc"] == str(reg_dir / "mine.toml")
    # use_env=False ignores the variable
    with pytest.raises(CatalogError, match=r"unknown accelerator"):
        load_catalog(use_env=False).accelerator("acme-x1")


def test_env_var_then_explicit_paths_precedence(tmp_path, monkeypatch):
    env_dir = write(tmp_path / "env", "x1.toml", accel_text()).parent
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    newer = accel_text(override=True).replace("idle_w = { value = 90,", "idle_w = { value = 55,", 1)
    flag = write(tmp_path / "flag", "x1.toml", newer)
    cat = load_catalog([flag])
    assert cat.accelerator("acme-x1").power.idle_w.value == 55
    assert cat.origins["accelerator:acme-x1"] == str(flag)


def test_bad_file_in_env_folder_is_reported(tmp_path, monkeypatch):
    text = re.sub(r'(tdp_w = \{ value = 700), source = "[^"]*"', r"\1", accel_text())
    bad = write(tmp_path, "bad.toml", text)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(CatalogError, match=re.escape(str(bad)) + r".*power\.tdp_w\.source"):
        load_catalog()


def test_unknown_scale_up_topology_names_the_field_and_the_choices(tmp_path):
    text = accel_text().replace('domain_devices = { value = 8,', 'topology = "ring"\ndomain_devices = { value = 8,', 1)
    assert 'topology = "ring"' in text
    with pytest.raises(CatalogError) as err:
        load_catalog([write(tmp_path, "ring.toml", text)])
    message = str(err.value)
    assert "scale_up.topology" in message and "ring.toml" in message
    assert all(choice in message for choice in ("'switch'", "'mesh'", "'torus2d'", "'torus3d'"))

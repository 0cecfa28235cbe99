"""Issue 15 items 2-5 in a real browser: every page's link restores its scenario after a reload (and a
page switch carries the scenario into the new page's link); typed numbers in scientific notation are
read, what cannot be read is refused with a message; invalid input leaves no figures; a bad link says
what it ignored and the closest valid value. One page load per check where it can be shared."""

import re

from app_page import metric, open_page, settle
from playwright.sync_api import Page, expect

PRICE = "Price USD per device-hour (0 = catalog)"


def reload(page: Page) -> None:
    page.reload()
    settle(page)


def go_to(page: Page, title: str) -> None:
    """Through the top navigation menu, as a user does (the new page's link starts empty)."""
    page.get_by_test_id("stTopNavSection").filter(has_text="Plan").click()
    page.get_by_role("menuitem", name=title).click()
    settle(page)


def type_into(page: Page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    settle(page)


def no_figures(page: Page, message: str) -> None:
    """The field's message is shown and nothing of the previous scenario is left on the page."""
    expect(page.get_by_text(message)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^No figures while"))).to_be_visible()
    expect(page.get_by_test_id("stMetric")).to_have_count(0)
    expect(page.locator(".js-plotly-plot")).to_have_count(0)


def test_item2_links_restore_the_scenario_on_every_page(page: Page, app_url: str):
    """Compare and Explorer read the Planner's scenario from the session: a reload showed the default 70B;
    /planner opened "Page not found"."""
    open_page(page, f"{app_url}/planner?n_dev=1024&hw=amd-mi300x&tokens_t=2&plan=auto")
    run = re.compile(r"2\.00T tokens\) on 1,024 x amd-mi300x")
    expect(page.get_by_text(run)).to_be_visible()
    expect(page.get_by_text("Page not found")).to_have_count(0)
    wall = metric(page, "Wall clock")
    reload(page)
    expect(page.get_by_label("Devices", exact=True)).to_have_value("1024")
    expect(page.get_by_text(run)).to_be_visible()
    assert metric(page, "Wall clock") == wall

    go_to(page, "Parallelism explorer")  # the scenario (but the plan) comes along, in the new page's link too
    expect(page).to_have_url(re.compile(r"/explorer\?.*n_dev=1024"))
    reload(page)
    expect(page.get_by_text(re.compile(r"^llama3-70b on 1,024 x amd-mi300x in us-virginia"))).to_be_visible()

    # Compare's own selections too (and the model and data); "FR" is the region's id, the page's link
    # holds "FR — France"
    open_page(page, f"{app_url}/compare?tokens_t=2&cmp_hw=amd-mi300x&cmp_devices=1024&cmp_region=FR")
    reload(page)
    expect(page.get_by_text(re.compile(r"^llama3-70b \(70\.6B parameters\), 2\.00T tokens"))).to_be_visible()
    chosen = {name: page.get_by_test_id("stMultiSelect").filter(has_text=name).inner_text()
              for name in ("Accelerators", "Regions", "Devices")}
    assert "amd-mi300x" in chosen["Accelerators"] and "nvidia-b200" not in chosen["Accelerators"]
    assert "FR — France" in chosen["Regions"] and "SE" not in chosen["Regions"]
    assert "1024" in chosen["Devices"] and "2048" not in chosen["Devices"]


def test_item2_serving_link_restores_after_a_reload(page: Page, app_url: str):
    """(Post-training's link: tests/dashboard/test_inputs.py; Project has no inputs but its upload.)"""
    open_page(page, f"{app_url}/serving?sv_dev=32&sv_hw=nvidia-h200-sxm-141gb")
    reload(page)
    expect(page.get_by_label("Devices", exact=True)).to_have_value("32")
    expect(page.get_by_text(re.compile(r"on 32 x nvidia-h200-sxm-141gb in us-virginia"))).to_be_visible()


def test_item3_typed_numbers_are_read_or_refused(page: Page, app_url: str):
    """"1e4" in Devices became 1, "3.7" became 3."""
    open_page(page, f"{app_url}/?plan=auto")  # 10,000 devices do not divide into the default manual plan
    type_into(page, "Devices", "1e4")
    expect(page.get_by_text(re.compile(r"on 10,000 x nvidia-h100-sxm-80gb"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"n_dev=1e4"))
    type_into(page, "Devices", "3.7")
    no_figures(page, "Devices: 3.7 is not a whole number; expected a whole number of at least 1")
    type_into(page, "Devices", "abc")
    no_figures(page, "Devices: 'abc' is not a number; expected a whole number of at least 1")


def test_item4_invalid_input_leaves_no_stale_figures(page: Page, app_url: str):
    """After devices -5, tokens 0 or price -3 the figures below still showed the previous scenario."""
    open_page(page, app_url)
    for label, bad, message, good in (
            ("Devices", "-5", "Devices: -5 is out of range", "4096"),
            ("Training tokens (trillions)", "0", "Training tokens (trillions): 0 is out of range", "15"),
            (PRICE, "-3", f"{PRICE}: -3 is out of range", None)):
        expect(page.get_by_test_id("stMetric").first).to_be_visible()  # the figures before
        type_into(page, label, bad)
        no_figures(page, message)
        if good:
            type_into(page, label, good)  # back to a valid value: the figures return


def test_item5_bad_link_says_what_it_ignored_and_the_closest_valid_value(page: Page, app_url: str):
    """`?hw=nvidia-h100-sxm-8gb`, `?region=Mars`, `?n_dev=abc` reset to the defaults without a word."""
    open_page(page, f"{app_url}/?hw=nvidia-h100-sxm-8gb&region=Mars&n_dev=abc")
    said = page.get_by_text(re.compile(r"^Ignored link parameter\(s\)"))
    expect(said).to_contain_text("hw=nvidia-h100-sxm-8gb: no such accelerator; closest valid value "
                                 "nvidia-h100-sxm-80gb")
    expect(said).to_contain_text(re.compile(r"region=Mars: no such region; closest valid value \S+"))
    expect(said).to_contain_text("n_dev=abc: Devices takes a whole number of at least 1; the default 4096 is used")
    expect(page.get_by_text(re.compile(r"on 4,096 x nvidia-h100-sxm-80gb in us-virginia"))).to_be_visible()
    assert metric(page, "Wall clock").endswith("days")

"""Planner, "When the run starts" (issue 15 item 1): a profile belongs to its region, so a region
without one shows no start-time figures that would contradict its annual figure."""

from apptools import metrics


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def test_region_without_a_profile_says_so_and_shows_no_start_figures(app):
    app.query_params["region"] = "FR"
    app.session_state["pl_start_open"] = True  # the section is opened (it is computed when open)
    at = app.run()
    assert not at.exception and not at.error
    shown = metrics(at)
    assert "Best start" not in shown and "Worst start" not in shown
    said = texts(at.info)
    assert "No hourly grid profile for FR: the shipped example is for us-virginia only" in said
    assert "Upload an hourly CSV for FR" in said
    assert f"({shown['Emissions'].split()[0]} t)" in said  # quotes the annual figure it would contradict


def test_the_example_region_keeps_its_start_figures(app):
    app.query_params["region"] = "us-virginia"
    app.session_state["pl_start_open"] = True
    at = app.run()
    assert not at.exception and not at.error
    shown = metrics(at)
    assert "Best start" in shown and "Worst start" in shown
    assert "No hourly grid profile" not in texts(at.info)
    assert any("Shipped example for us-virginia" in c.value for c in at.caption)

"""Issue 15 item 9: memory-bound phases (serving decode, RLHF rollouts) are priced by the FLOP-only power
curve; the library's caveat, with its TDP bound, sits by the energy figure on the Serving and
Post-training pages."""

from simulator.footprint.energy import MEMORY_BOUND_NOTE


def page_test(app, name):
    return app.switch_page(f"app_pages/{name}.py").run()


def energy_captions(at) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("Energy: ") or " Energy: " in c.value]


def test_posttraining_energy_caveat_by_the_figure(app):
    at = page_test(app, "posttraining")
    assert not at.exception and not at.error
    shown = energy_captions(at)
    assert any(MEMORY_BOUND_NOTE in c and "rlhf rollout generation: decode priced at" in c and "TDP" in c
               for c in shown), shown
    assert not any(MEMORY_BOUND_NOTE in i.value for i in at.info)  # not repeated among the notes


def test_serving_energy_caveat_by_the_figure(app):
    at = page_test(app, "serving")
    assert not at.exception and not at.error
    shown = energy_captions(at)
    assert any(MEMORY_BOUND_NOTE in c and c.count("serving power: ") == 1 for c in shown), shown
    assert not any(MEMORY_BOUND_NOTE in i.value for i in at.info)

"""The console in a real browser (headless Chromium): the playground with four models side
by side, escaping, the clear messages, and the dashboard of a simulated experiment showing
the report's figures. See ``browser.py`` for when these skip or fail.

``SESSIONREC_CONSOLE_SCREENSHOTS=DIR`` saves a PNG of each page into DIR (docs/ has them);
the click-to-strips times measured with the Performance API are printed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.experiments.report import analyse
from sessionrec.experiments.synthetic_log import synthetic_events, write_log
from sessionrec.serving.app import create_app
from sessionrec.serving.bundle import load_bundle
from sessionrec.serving.store import MemoryStore
from tests.serving.helpers import settings

from .browser import ServerThread, chromium, wait_for
from .conftest import MARKUP

SHOTS = os.environ.get("SESSIONREC_CONSOLE_SCREENSHOTS")
K = 10


def shot(driver, name: str, height: int | None = None) -> None:
    if not SHOTS:
        return
    if height:
        driver.set_window_size(driver.get_window_size()["width"], height)
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(Path(SHOTS) / f"console-{name}.png"))


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def lanes_state(driver) -> dict:
    """Lane name -> {n: products in its strip, events: clicks it answered} or {error}."""
    return dict(driver.execute_script("""
        return [...document.querySelectorAll('.lane')].map((lane) => {
          const strip = lane.querySelector('.strip');
          return [lane.dataset.lane, strip ? {n: strip.children.length,
                                              events: strip.dataset.events}
                                           : {error: lane.querySelector('.error').textContent}];
        });"""))


def test_playground_session_with_four_models(console_root, browser):
    runs = console_root / "runs"
    compare = (f"hgru={runs / 'hgru4rec'},often-bought-together=often-bought-together,"
               f"popular=popular,broken={runs / 'broken'}")
    app = create_app(settings(model=str(runs / "gru4rec"), ui_compare=compare, default_k=K),
                     bundle=load_bundle(runs / "gru4rec"), store=MemoryStore())
    d = browser
    with ServerThread(app) as server:
        d.get(server.url + "/ui/playground")
        wait_for(d, "return document.querySelectorAll('#results .product-link').length > 0")
        working = ["gru4rec", "hgru", "often-bought-together", "popular"]
        state = lanes_state(d)
        assert list(state) == [*working, "broken"]
        assert "no saved model" in state["broken"]["error"]

        # open a product: every model's strip fills
        d.find_element("css selector", '#results .product-link[data-product="100"]').click()
        wait_for(d, "return document.body.dataset.clicks === '1'")
        state = lanes_state(d)
        assert all(state[n]["n"] == K and state[n]["events"] == "1" for n in working), state
        assert d.find_element("id", "product-title").text == "Product A"
        assert [li.text for li in d.find_elements("css selector", "#trail li")] == ["Product A"]

        # click a recommendation: the trail grows, every strip answers the longer session
        first = d.find_element("css selector", '.lane[data-lane="gru4rec"] .product-link')
        clicked = first.get_attribute("data-product")
        first.click()
        wait_for(d, "return document.body.dataset.clicks === '2'")
        state = lanes_state(d)
        assert all(state[n]["events"] == "2" for n in working)
        assert len(d.find_elements("css selector", "#trail li")) == 2
        strip = d.find_elements("css selector", '.lane[data-lane="gru4rec"] .product-link')
        assert clicked not in [b.get_attribute("data-product") for b in strip]  # seen: excluded
        for n in (3, 4, 5):  # a few more clicks for the timing
            d.find_element("css selector", '.lane[data-lane="hgru"] .product-link').click()
            wait_for(d, "return document.body.dataset.clicks === arguments[0]", 60, str(n))
        shot(d, "playground", 1500)
        times = d.execute_script(
            "return performance.getEntriesByName('click-to-strips').map(e => e.duration)")
        print(f"click -> all {len(working)} strips updated (ms): "
              + json.dumps([round(t, 1) for t in times]))
        if os.environ.get("SESSIONREC_CONSOLE_TIMINGS"):
            Path(os.environ["SESSIONREC_CONSOLE_TIMINGS"]).write_text(json.dumps(
                {"models": len(working), "click_to_strips_ms": times}))
        assert len(times) == 5

        # markup in a product name stays text
        box = d.find_element("id", "q")
        box.clear()
        box.send_keys("Bold\n")
        wait_for(d, "return document.getElementById('results-h').textContent.includes('Bold')")
        names = [e.text for e in d.find_elements("css selector", "#results .pname")]
        assert names == [MARKUP]
        assert not d.find_elements("css selector", "#results b, #results img")
        d.find_element("css selector", "#results .product-link").click()
        wait_for(d, "return document.body.dataset.clicks === '6'")
        assert d.find_element("id", "product-title").text == MARKUP
        assert d.execute_script("return window.__xss") is None

        # clear messages: nothing found, empty search, reset
        box.clear()
        box.send_keys("no-such-thing\n")
        wait_for(d, "return document.getElementById('status').textContent.includes('No product')")
        box.clear()
        d.find_element("css selector", "#search button").click()
        wait_for(d, "return document.getElementById('status').textContent.includes('Empty')")
        d.find_element("id", "reset").click()
        wait_for(d, "return document.getElementById('trail').textContent === 'No clicks yet.'")

        # an unknown product from a link, keyboard: "/" focuses the search
        d.get(server.url + "/ui/playground?product=nope")
        wait_for(d, "return document.getElementById('status').textContent"
                    ".includes(\"Unknown product 'nope'\")")
        d.find_element("css selector", "body").send_keys("/")
        assert d.execute_script("return document.activeElement.id") == "q"

        d.get(server.url + "/ui/models/gru4rec")
        assert "recall@20" in d.find_element("id", "metrics").text
        shot(d, "model-card", 1400)
        d.set_window_size(390, 844)  # a phone
        d.get(server.url + "/ui/playground?product=101")
        wait_for(d, "return document.body.dataset.clicks === '1'")
        assert d.execute_script("return document.documentElement.scrollWidth") <= 390 + 1
        shot(d, "playground-phone")
        d.set_window_size(1280, 800)


def experiment_app(folder: Path, runs: Path, events: bool = True):
    toml = folder / "exp.toml"
    toml.write_text(f"""[experiment]
name = "console-test"
salt = "pepper"
fallback = "{(runs / 'cooc').as_posix()}"
[variants.control]
model = "often-bought-together"
weight = 0.5
[variants.gru]
model = "{(runs / 'gru4rec').as_posix()}"
weight = 0.5
""")
    config = load_experiment(toml)
    url = f"sqlite:///{(folder / 'events.db').as_posix()}"
    frame = synthetic_events(config, n_units=300, days=4, ctr={"gru": 0.12}, seed=1)
    if events:
        with open_event_log(url) as log:
            write_log(log, frame)
    app = create_app(settings(experiment=str(toml), event_log=url), store=MemoryStore())
    return app, config, frame


def test_dashboard_shows_the_reports_figures(console_root, browser, tmp_path):
    app, config, _ = experiment_app(tmp_path, console_root / "runs")
    with open_event_log(f"sqlite:///{(tmp_path / 'events.db').as_posix()}") as log:
        expected = analyse(log.read_frame(config.name), config, n_boot=0)
    d = browser
    with ServerThread(app) as server:
        d.get(server.url + "/ui/experiment")
        wait_for(d, "return document.body.dataset.ready === '1'", 120)
        verdicts = [li.text for li in d.find_elements("css selector", "#verdicts li")]
        assert verdicts == [c["verdict"] for c in expected["comparisons"]]
        shown = float(d.find_element("id", "srm-p").get_attribute("data-value"))
        assert shown == pytest.approx(expected["srm"]["p_value"], rel=1e-12)
        for v in expected["variants"]:
            row = d.find_element("css selector", f'#variants tr[data-variant="{v["variant"]}"]')
            cells = [c.get_attribute("data-value") for c in row.find_elements("css selector", "td")]
            assert int(cells[0]) == v["units"] and int(cells[2]) == v["impressions"]
            assert int(cells[3]) == v["clicks"]
            assert float(cells[4]) == pytest.approx(v["ctr"], rel=1e-12)
        for c in expected["comparisons"]:
            row = d.find_element("css selector", f'#comparisons tr[data-variant="{c["variant"]}"]'
                                                 f'[data-kpi="{c["kpi"]}"]')
            cells = [x.get_attribute("data-value") for x in row.find_elements("css selector", "td")]
            assert float(cells[4]) == pytest.approx(c["p_value"], rel=1e-9)
            assert float(cells[5]) == pytest.approx(c["p_holm"], rel=1e-9)
            assert float(cells[6]) == pytest.approx(c["p_always_valid"], rel=1e-9)
        assert len(d.find_elements("css selector", "#charts svg polyline")) == 8  # 4 charts x 2
        shot(d, "experiment", 1700)

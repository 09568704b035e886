"""The report in a real browser: headless Chromium (Debian's ``chromium``, listed in
scripts/system-deps-report.txt) renders it; any console error, exception, failed load
or image that does not load fails the test, and a screenshot is saved in tmp_path.

A missing chromium is a failure, never a skip: the report's promise is that it opens.
"""

import json
import re

from _headless_chromium import find_chromium, render

PNG = b"\x89PNG\r\n\x1a\n"


def test_chromium_is_installed():
    assert find_chromium(), "chromium is missing: sh scripts/install-system-deps.sh (scripts/system-deps-report.txt)"


def test_report_renders_without_errors(jv_runs, text_runs, tmp_path):
    from lstmlite.report import write_report

    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"machine": {}, "cases": [
        {"engine": "torch-fp32", "input_size": 12, "hidden_size": 8, "seq_len": 20, "batch": 1,
         "mode": "sequence", "median_us": 100.0, "p90_us": 120.0}]}))
    report = write_report([*jv_runs, *text_runs], tmp_path / "report.html", bench=[bench], explain_sample=0)
    html = report.read_text(encoding="utf-8")
    page = render(report, tmp_path / "report.png")
    assert page.problems() == []
    assert len(page.images) == len(re.findall(r"<img ", html)) >= 10
    assert all(i["src"].startswith("data:image/png;base64,") for i in page.images)
    assert all(url == report.resolve().as_uri() or url.startswith("data:") for url in page.requests), page.requests
    assert page.title == "lstmlite report" and page.text_length > 1000
    shot = (tmp_path / "report.png").read_bytes()
    assert shot.startswith(PNG) and len(shot) > 50_000
    width, height = int.from_bytes(shot[16:20], "big"), int.from_bytes(shot[20:24], "big")
    assert width == 1200 and height > 3000  # the whole page, not just the first screen


def test_the_check_catches_a_broken_page(tmp_path):
    """The same check on a page with a broken image, a console error and a thrown
    exception reports all three (so a clean result above means something)."""
    page_file = tmp_path / "broken.html"
    page_file.write_text("<!DOCTYPE html><html><head><title>broken</title></head><body>"
                         '<img src="data:image/png;base64,iVBORw0KGgo=" alt="truncated">'
                         f'<img src="{(tmp_path / "missing.png").as_uri()}" alt="missing">'
                         "<script>console.error('boom'); throw new Error('bang');</script></body></html>")
    problems = render(page_file, tmp_path / "broken.png").problems()
    assert any("console.error" in p and "boom" in p for p in problems), problems
    assert any("exception" in p for p in problems), problems
    assert sum("image not loaded" in p for p in problems) == 2, problems
    assert (tmp_path / "broken.png").read_bytes().startswith(PNG)

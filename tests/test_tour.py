"""`scratchnet tour`: the page writer, the plots, the driver, and the quick tour opened in a browser.

Oracles: the HTML is parsed back with the standard library's parser (every
picture the page names exists and is a PNG of the size drawn); failures are
provoked on purpose (a part that raises, a missing picture) and must show;
the quick tour is run once, as the README's main job runs it, and its page is
opened in headless Chromium (when installed), whose own count of the pictures
that loaded must equal the page's <img> count with none broken.
"""

import html.parser
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from scratchnet import cli, tour
from scratchnet.plots import Panel, plot_panels
from scratchnet.tour.page import Code, Figure, Section, Table, Text, write_page

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


class PageParser(html.parser.HTMLParser):
    """Collects the page's <img> sources, <h2> titles and body attributes."""

    def __init__(self):
        super().__init__()
        self.images, self.titles, self.body, self._in_h2 = [], [], {}, False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        elif tag == "h2":
            self._in_h2 = True
            self.titles.append("")
        elif tag == "body":
            self.body = dict(attrs)

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.titles[-1] += data


def parse(text):
    parser = PageParser()
    parser.feed(text)
    return parser


# ------------------------------------------------------------------ the page

def test_page_escapes_text_and_names_every_block(tmp_path):
    section = Section("a", "Costs <J> & co")
    section.add(Text("d <= tau & alpha > 0"))
    section.add(Table(["name", "value"], [["x < y", 0.5], ["n", 3]]))
    section.add(Code("if a < b:\n    pass"))
    section.add(Figure("images/p.png", "a <picture>"))
    write_page(tmp_path / "index.html", "T & T", [section], "summary <here>")
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    page = parse(text)
    assert page.titles == ["Costs <J> & co"]
    assert page.images == ["images/p.png"]
    assert "d &lt;= tau &amp; alpha &gt; 0" in text
    assert "<td>x &lt; y</td>" in text and '<td class="number">0.5</td>' in text
    assert '<td class="number">3</td>' in text
    assert "if a &lt; b:" in text
    assert "<script>" in text and "data-images-broken" in text    # the in-page image check


def test_page_shows_a_failed_part_and_refuses_unknown_blocks(tmp_path):
    failed = Section("b", "B", error="RuntimeError: no face found")
    write_page(tmp_path / "index.html", "T", [failed], "s")
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "This part stopped: RuntimeError: no face found" in text
    assert "(failed)" in text
    with pytest.raises(TypeError, match="block: expected Text, Table, Figure or Code, got int"):
        write_page(tmp_path / "other.html", "T", [Section("c", "C", blocks=[3])], "s")
    assert not (tmp_path / "other.html").exists()        # nothing half-written


# ------------------------------------------------------------------ plots

@pytest.mark.parametrize("use_matplotlib", [False, True])
def test_plots_draw_a_png_with_one_panel_per_entry(tmp_path, use_matplotlib):
    if use_matplotlib:
        pytest.importorskip("matplotlib")
    panels = [Panel("loss", "step", {"J": ([1, 2, 3], [3.0, 2.0, 1.5])}),
              Panel("accuracy", "step", {"train": ([1, 2, 3], [0.5, 0.7, 0.9]),
                                         "test": ([1, 2, 3], [0.5, 0.6, np.nan])}, ylim=(0, 1))]
    drawer = plot_panels(tmp_path / "p.png", panels, use_matplotlib=use_matplotlib)
    assert drawer == ("matplotlib" if use_matplotlib else "pillow")
    with Image.open(tmp_path / "p.png") as picture:
        width, height = picture.size
        pixels = np.asarray(picture.convert("RGB"))
    assert width > 1.5 * height                          # two panels side by side
    coloured = (np.abs(pixels[..., 0].astype(int) - pixels[..., 2]) > 60).sum()
    assert coloured > 50                                  # the lines were drawn in colour


def test_plots_refuse_bad_series(tmp_path):
    with pytest.raises(ValueError, match=r"series\['J'\]: expected x and y of one non-zero "
                                         r"length, got 3 and 2"):
        plot_panels(tmp_path / "p.png", [Panel("loss", "step", {"J": ([1, 2, 3], [1, 2])})])
    with pytest.raises(ValueError, match="panels: expected at least one Panel"):
        plot_panels(tmp_path / "p.png", [])
    assert not (tmp_path / "p.png").exists()


# ------------------------------------------------------------------ the driver

def test_a_failing_part_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    def broken(tour, section):
        raise RuntimeError("out of faces")

    monkeypatch.setitem(tour.PARTS, "check", ("The check", broken))
    status = cli.main(["tour", "--quick", "--only", "check", "--only", "shapes",
                       "--out", str(tmp_path)])
    assert status == 1
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "This part stopped: RuntimeError: out of faces" in text
    page = parse(text)
    assert page.titles[0] == "The check" and "shape chains" in page.titles[1]
    assert "14 -&gt; 10x16 -&gt; 6x32" in text              # the part after it ran
    assert "finished with failures: check" in capsys.readouterr().out


def test_bad_options_exit_with_status_2(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    assert cli.main(["tour", "--out", str(a_file)]) == 2
    assert "--out: expected a folder, got the file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["tour", "--only", "everything"])
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match=r"only: unknown part\(s\) \['x'\]"):
        tour.run_tour(tmp_path, only=["x"])


# ------------------------------------------------------------------ the quick tour

@pytest.fixture(scope="module")
def quick_tour(tmp_path_factory):
    """`scratchnet tour --quick`, once: (folder, exit status)."""
    folder = tmp_path_factory.mktemp("tour")
    return folder, cli.main(["tour", "--quick", "--out", str(folder)])


@pytest.mark.slow
def test_the_quick_tour_runs_every_part_and_its_pictures_exist(quick_tour):
    folder, status = quick_tour
    assert status == 0
    text = (folder / "index.html").read_text(encoding="utf-8")
    page = parse(text)
    assert len(page.titles) == len(tour.PARTS)
    assert "This part stopped" not in text
    assert len(page.images) >= 10
    for source in page.images:
        with Image.open(folder / source) as picture:       # exists and is a real picture
            assert picture.format == "PNG" and min(picture.size) >= 32
    for chain in ("14 -&gt; 10x16 -&gt; 6x32", "14x14x3 -&gt; 10x10x16 -&gt; 6x6x32",
                  "14x14x14 -&gt; 10x10x10x16 -&gt; 6x6x6x32"):
        assert chain in text


def browser():
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium installed")


def images_seen_by_browser(page_path):
    """(loaded, broken) as the page's own script counted them in headless Chromium."""
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu",
               "--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom",
               page_path.resolve().as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    broken = re.search(r'data-images-broken="(\d+)"', dom)
    assert loaded and broken, f"the page's image check did not run; the DOM began {dom[:300]!r}"
    return int(loaded.group(1)), int(broken.group(1))


def test_the_browser_check_sees_a_missing_picture(tmp_path):
    os.makedirs(tmp_path / "images")
    Image.new("RGB", (8, 8), "red").save(tmp_path / "images" / "here.png")
    section = Section("a", "A", blocks=[Figure("images/here.png", "here"),
                                        Figure("images/gone.png", "gone")])
    write_page(tmp_path / "index.html", "T", [section], "s")
    assert images_seen_by_browser(tmp_path / "index.html") == (1, 1)


@pytest.mark.slow
def test_every_picture_of_the_quick_tour_loads_in_a_browser(quick_tour):
    folder, _ = quick_tour
    page = parse((folder / "index.html").read_text(encoding="utf-8"))
    assert images_seen_by_browser(folder / "index.html") == (len(page.images), 0)


def test_the_pretrained_part_is_skipped_with_a_note_when_dlib_files_are_missing(tmp_path,
                                                                                monkeypatch):
    from scratchnet.face.dlib import files

    monkeypatch.setattr(files, "model_search_dirs", lambda: [])
    assert cli.main(["tour", "--quick", "--only", "pretrained", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Skipped: dlib&#x27;s model files (detector, landmarks68, resnet) are not installed" \
        in text
    assert "This part stopped" not in text and parse(text).images == []

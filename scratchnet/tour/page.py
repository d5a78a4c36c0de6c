"""The tour's report: sections of text, tables, pictures and code, written as one HTML page.

A `Section` holds what one part of the tour found, as a list of blocks:
`Text` (a paragraph), `Table` (a header and rows), `Figure` (a PNG in the
report's folder, with a caption) and `Code` (preformatted text such as a model
summary). `write_page` turns the sections into DIR/index.html: one page with
no outside resources (the style sheet is inline, the pictures are files next
to it), readable offline.

The page also carries a few lines of script that, once the page has loaded,
count the pictures that loaded and those that did not, show a banner when a
picture is missing, and record the count on the <body> element
(data-images-loaded, data-images-broken) for automated checks.
"""

import dataclasses
import datetime
import html
import os

from ..serialize import atomic_write


@dataclasses.dataclass
class Text:
    text: str


@dataclasses.dataclass
class Table:
    header: list
    rows: list


@dataclasses.dataclass
class Figure:
    path: str          # relative to the report's folder
    caption: str


@dataclasses.dataclass
class Code:
    text: str


@dataclasses.dataclass
class Section:
    key: str
    title: str
    blocks: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    error: str = None   # why the section could not run, when it failed

    def add(self, block):
        self.blocks.append(block)
        return block


STYLE_SHEET = """
body { font-family: sans-serif; max-width: 64em; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
.meta { color: #666; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; image-rendering: pixelated; }
figcaption { color: #555; font-size: 0.92em; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.error { background: #fee; border: 1px solid #c66; padding: 0.6em; }
#broken-images { display: none; background: #fee; border: 1px solid #c66; padding: 0.6em; }
"""

IMAGE_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (image) {
    return !image.complete || image.naturalWidth === 0;
  });
  document.body.setAttribute("data-images-loaded", images.length - broken.length);
  document.body.setAttribute("data-images-broken", broken.length);
  if (broken.length > 0) {
    var banner = document.getElementById("broken-images");
    banner.textContent = broken.length + " picture(s) did not load: " +
      broken.map(function (image) { return image.getAttribute("src"); }).join(", ");
    banner.style.display = "block";
  }
});
"""


def write_page(path, title, sections, summary):
    """Write the report to `path` (atomically); `summary` is a line under the title."""
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p class="meta">{html.escape(summary)}</p>',
            '<p id="broken-images"></p>',
            _contents(sections)]
    body += [_section_html(section) for section in sections]
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE_SHEET}</style>",
        f"<script>{IMAGE_CHECK_SCRIPT}</script>",
        "</head>",
        "<body>",
        *body,
        f'<p class="meta">Written {datetime.datetime.now():%Y-%m-%d %H:%M}.</p>',
        "</body>",
        "</html>",
        "",
    ])
    with atomic_write(path) as file:
        file.write(page.encode("utf-8"))


def _contents(sections):
    items = "".join(f'<li><a href="#{section.key}">{html.escape(section.title)}</a> '
                    f'<span class="meta">({_duration(section)})</span></li>'
                    for section in sections)
    return f"<ol>{items}</ol>"


def _duration(section):
    return "failed" if section.error else f"{section.seconds:.0f} s"


def _section_html(section):
    parts = [f'<h2 id="{section.key}">{html.escape(section.title)}</h2>']
    parts += [_block_html(block) for block in section.blocks]
    if section.error:
        parts.append(f'<p class="error">This part stopped: {html.escape(section.error)}</p>')
    parts.append(f'<p class="meta">This part took {section.seconds:.1f} s.</p>')
    return "\n".join(parts)


def _block_html(block):
    if isinstance(block, Text):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text)}</pre>"
    if isinstance(block, Figure):
        source = html.escape(block.path.replace(os.sep, "/"), quote=True)
        caption = html.escape(block.caption)
        return (f'<figure><img src="{source}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Table):
        header = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in block.header)
        rows = "".join("<tr>" + "".join(_cell(value) for value in row) + "</tr>"
                       for row in block.rows)
        return f"<table><tr>{header}</tr>{rows}</table>"
    raise TypeError(f"block: expected Text, Table, Figure or Code, got {type(block).__name__}")


def _cell(value):
    if isinstance(value, float):
        return f'<td class="number">{value:.4g}</td>'
    if isinstance(value, int):
        return f'<td class="number">{value}</td>'
    return f"<td>{html.escape(str(value))}</td>"

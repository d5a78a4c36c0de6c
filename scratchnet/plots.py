"""Line plots for training curves, with matplotlib when it is installed and Pillow otherwise.

    plot_panels(path, [Panel("loss J", "step", {"train": (steps, losses)}), ...])

draws the panels side by side into one PNG (written atomically). matplotlib
(the optional extra `plots`) gives the nicer picture, with its Agg back end so
that no window is opened; without it, Pillow draws the same panels: axes with
the first and last value of each range as ticks, one coloured line per series
and a legend. Either way the caller gets the same file.
"""

import dataclasses
import importlib.util
import io

import numpy as np
from PIL import Image, ImageDraw

from .io.images import default_font
from .serialize import atomic_write

PANEL_SIZE = (420, 300)          # pixels of one panel drawn by Pillow
MARGIN = (58, 30, 14, 44)        # left, top, right, bottom, around the plot box
FONT_SIZE = 12
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


@dataclasses.dataclass
class Panel:
    title: str
    xlabel: str
    series: dict                 # label -> (x, y), equal-length sequences
    ylim: tuple = None           # (low, high), or None for the data's range


def plot_panels(path, panels, use_matplotlib=None):
    """Draw `panels` side by side to the PNG at `path`; returns which drawer was used.

    use_matplotlib: None (when importable), True (required) or False (Pillow).
    """
    panels = _checked(panels)
    if use_matplotlib is None:
        use_matplotlib = _matplotlib_available()
    png = _with_matplotlib(panels) if use_matplotlib else _with_pillow(panels)
    with atomic_write(path) as file:
        file.write(png)
    return "matplotlib" if use_matplotlib else "pillow"


def _checked(panels):
    if not panels:
        raise ValueError("panels: expected at least one Panel, got none")
    for panel in panels:
        if not isinstance(panel, Panel):
            raise TypeError(f"panels: expected Panel objects, got {type(panel).__name__}")
        for label, (x, y) in panel.series.items():
            if len(x) != len(y) or len(x) == 0:
                raise ValueError(f"panels[{panel.title!r}].series[{label!r}]: expected x and y "
                                 f"of one non-zero length, got {len(x)} and {len(y)}")
    return panels


def _matplotlib_available():
    return importlib.util.find_spec("matplotlib") is not None


def _with_matplotlib(panels):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for axis, panel in zip(axes[0], panels):
        for label, (x, y) in panel.series.items():
            axis.plot(x, y, label=label, linewidth=1.5)
        axis.set_title(panel.title)
        axis.set_xlabel(panel.xlabel)
        if panel.ylim is not None:
            axis.set_ylim(*panel.ylim)
        axis.grid(alpha=0.3)
        if len(panel.series) > 1:
            axis.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _with_pillow(panels):
    width, height = PANEL_SIZE
    picture = Image.new("RGB", (width * len(panels), height), "white")
    draw = ImageDraw.Draw(picture)
    font = default_font(FONT_SIZE)
    for index, panel in enumerate(panels):
        _draw_panel(draw, font, panel, index * width)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _draw_panel(draw, font, panel, offset):
    left, top, right, bottom = _plot_box(offset)
    xs = np.concatenate([np.asarray(x, dtype=float) for x, _ in panel.series.values()])
    ys = np.concatenate([np.asarray(y, dtype=float) for _, y in panel.series.values()])
    x_low, x_high = _range(xs)
    y_low, y_high = panel.ylim if panel.ylim is not None else _range(ys)

    def pixel(x, y):
        return (left + (x - x_low) / (x_high - x_low) * (right - left),
                bottom - (y - y_low) / (y_high - y_low) * (bottom - top))

    draw.rectangle([left, top, right, bottom], outline=(0, 0, 0))
    draw.text(((left + right) / 2, 6), panel.title, fill=(0, 0, 0), font=font, anchor="mt")
    draw.text(((left + right) / 2, bottom + 26), panel.xlabel, fill=(0, 0, 0), font=font,
              anchor="mt")
    for value, anchor in ((x_low, "lt"), (x_high, "rt")):
        draw.text((pixel(value, y_low)[0], bottom + 4), f"{value:g}", fill=(0, 0, 0), font=font,
                  anchor=anchor)
    for value in (y_low, y_high):
        draw.text((left - 4, pixel(x_low, value)[1]), f"{value:.3g}", fill=(0, 0, 0), font=font,
                  anchor="rm")
    for number, (label, (x, y)) in enumerate(panel.series.items()):
        colour = COLOURS[number % len(COLOURS)]
        points = [pixel(a, b) for a, b in zip(x, y) if np.isfinite(b)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2,
                          points[0][1] + 2], fill=colour)
        if len(panel.series) > 1:
            draw.text((right - 4, top + 4 + 14 * number), label, fill=colour, font=font,
                      anchor="ra")


def _plot_box(offset):
    width, height = PANEL_SIZE
    margin_left, margin_top, margin_right, margin_bottom = MARGIN
    return (offset + margin_left, margin_top, offset + width - margin_right,
            height - margin_bottom)


def _range(values):
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low - 0.5, high + 0.5)


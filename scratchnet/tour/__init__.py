"""`scratchnet tour`: the course's final week run end to end, written up as one HTML page.

    from scratchnet.tour import run_tour
    sections = run_tour("tour", quick=True)     # -> tour/index.html and tour/images/

runs, in order, the parts listed in PARTS (scratchnet/tour/sections.py has
one function per part): the gradient check of every op, the 1D/2D/3D shape
chains, face verification and one-shot recognition trained on synthetic
persons, dlib's pretrained face networks (when their files are installed),
style transfer with its progression strip, the nine patches that most excite
units of layers 1 to 5, and the 1D and 3D ConvNets at work. Every part
writes its pictures under DIR/images (or a folder of its own) and adds a
Section to the page; DIR/index.html is rewritten after each part, so a
reader can open it while the tour runs. A part that fails is reported on
the page and the tour goes on.

quick=True runs every part at a small size (1 to 2 minutes on 2 cores);
the full tour takes about 5 minutes. Progress lines go to `note`.
"""

import os
import time

from ..io.images import save_image
from ..plots import plot_panels
from . import sections
from .page import Figure, Section, write_page

PARTS = {                   # key (for --only) -> (title on the page, the function that runs it)
    "check": ("Every backward pass, checked by finite differences", sections.gradient_check),
    "shapes": ("Convolutions in 1D, 2D and 3D: the slides' shape chains", sections.shapes),
    "face": ("Face verification and one-shot recognition, trained here", sections.face),
    "pretrained": ("dlib's pretrained face networks on scratchnet's kernels",
                   sections.pretrained_faces),
    "style": ("Neural style transfer on VGG19", sections.style_transfer),
    "visualize": ("What ConvNets learn: the nine patches that excite a unit most",
                  sections.what_convnets_learn),
    "heartbeats": ("A 1D ConvNet at work: heart rhythms from ECG-like signals",
                   sections.heartbeats),
    "volumes": ("A 3D ConvNet at work: healthy volumes, nodules and cysts", sections.volumes),
}
TITLE = "scratchnet: a tour of the ConvNet course's final week"


class Tour:
    """What every part gets: where to write, how big to run, how to report progress."""

    def __init__(self, out, quick, note):
        self.out, self.quick, self.note = os.fspath(out), quick, note
        self.preset = sections.PRESETS["quick" if quick else "full"]
        self.shared = {}

    def path(self, *parts):
        """A path under the report's folder."""
        return os.path.join(self.out, *parts)

    def figure(self, name, image, caption):
        """Save a (3, H, W) picture in [0, 1] as images/NAME.png; the Figure that shows it."""
        save_image(image, self.path("images", f"{name}.png"))
        return Figure(f"images/{name}.png", caption)

    def plot(self, name, panels, caption):
        """Draw `panels` (scratchnet.plots.Panel) as images/NAME.png; the Figure that shows it."""
        os.makedirs(self.path("images"), exist_ok=True)
        plot_panels(self.path("images", f"{name}.png"), panels)
        return Figure(f"images/{name}.png", caption)

    def existing_figure(self, relative_path, caption):
        """A Figure for a picture some part already wrote under the report's folder."""
        if not os.path.isfile(self.path(relative_path)):
            raise FileNotFoundError(f"the picture {relative_path} was not written")
        return Figure(relative_path, caption)

    def step_printer(self, part, record):
        """A face-training report callback: appends each step to `record`, notes about 10."""
        def report(step):
            record.append(step)
            interval = max(1, step.steps // 10)
            if step.step % interval == 0 or step.step == step.steps:
                self.note(f"{part}: step {step.step}/{step.steps}  J {step.loss:.3f}  "
                          f"active {step.active:.2f}  {step.seconds:.0f} s")
        return report

    def iteration_printer(self, part, iterations):
        """A style-transfer callback that notes about 5 progress lines."""
        interval = max(1, iterations // 5)

        def callback(progress):
            if progress.iteration % interval == 0 or progress.iteration == iterations:
                self.note(f"{part}: iteration {progress.iteration}/{iterations}  "
                          f"J {progress.J:.4g}  {progress.seconds_per_iteration:.2f} s each")
        return callback


def run_tour(out, quick=False, only=None, note=print):
    """Run the parts (all, or those named in `only`) and write OUT/index.html; the Sections."""
    unknown = sorted(set(only or ()) - set(PARTS))
    if unknown:
        raise ValueError(f"only: unknown part(s) {unknown}; known: {', '.join(PARTS)}")
    tour = Tour(out, quick, note)
    os.makedirs(tour.path("images"), exist_ok=True)
    chosen = [key for key in PARTS if not only or key in only]
    done, started = [], time.perf_counter()
    for number, key in enumerate(chosen, 1):
        note(f"[{number}/{len(chosen)}] {key} ...")
        done.append(_run_part(key, tour))
        note(f"[{number}/{len(chosen)}] {key}: {_outcome(done[-1])}")
        _write(tour, done, time.perf_counter() - started, finished=number == len(chosen))
    return done


def _run_part(key, tour):
    title, part = PARTS[key]
    section = Section(key, title)
    started = time.perf_counter()
    try:
        part(tour, section)
    except Exception as error:          # one part's failure is reported; the others still run
        section.error = f"{type(error).__name__}: {error}"
    section.seconds = time.perf_counter() - started
    return section


def _outcome(section):
    return f"FAILED ({section.error})" if section.error else f"done in {section.seconds:.0f} s"


def _write(tour, done, seconds, finished):
    mode = "quick" if tour.quick else "full"
    state = "finished" if finished else "still running"
    summary = (f"{mode} tour, {state}: {len(done)} part(s) in {seconds:.0f} s "
               f"({sum(1 for s in done if s.error)} failed)")
    write_page(tour.path("index.html"), TITLE, done, summary)

"""The documentation's examples run, and the names and files it cites exist.

1. Every ```python block of docs/*.md and README.md is executed. The blocks of
   one file run in order in one shared namespace, so a later block can use the
   names an earlier one defined. A block whose fence is preceded by the line
   `<!-- skip-test -->` is not run. Each block is compiled under the Markdown
   file's name with its own line numbers, so a traceback points at the line of
   the .md file that failed.
2. In the engine-core pages (CHECKED_PAGES), every name written in backticks
   as `kernels.x`, `scratchnet.x.y` or `F.x` (scratchnet.functional) resolves,
   and every backticked repository path (`kernels/conv.py`,
   `tests/test_conv.py::test_slide_shapes`) exists, except on lines that say
   the thing is planned or not yet built.
"""

import ast
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC_FILES = sorted((ROOT / "docs").glob("*.md")) + [
    path for path in [ROOT / "README.md"] if path.exists()
]
# the engine-core pages whose citations are checked (other pages may cite work in progress)
CHECKED_PAGES = [
    ROOT / "docs" / name
    for name in ("index.md", "derivations.md", "slides.md", "kernels.md", "autograd.md")
]
SKIP_MARKER = "<!-- skip-test -->"
PLANNED_WORDS = ("planned", "not yet", "issue:")


def _relative(path):
    return path.relative_to(ROOT).as_posix()


def python_blocks(text):
    """(line number of the first code line, code, skipped) for each ```python block."""
    lines = text.splitlines()
    blocks, fence = [], None  # fence: index of the ```python line of the open block
    for index, line in enumerate(lines):
        if fence is None and line.strip() == "```python":
            fence = index
        elif fence is not None and line.strip() == "```":
            code = "\n".join(lines[fence + 1:index])
            blocks.append((fence + 2, code, _marked_skip(lines, fence)))
            fence = None
    if fence is not None:
        raise ValueError(f"```python block opened at line {fence + 1} is never closed")
    return blocks


def _marked_skip(lines, fence):
    """True if the last non-blank line before the fence is the skip marker."""
    before = [line.strip() for line in lines[:fence] if line.strip()]
    return bool(before) and before[-1] == SKIP_MARKER


# ------------------------------------------------ the extractor, checked by hand

def test_python_blocks_are_found_with_line_numbers_and_skip_markers():
    text = "\n".join([
        "# title",                 # 1
        "```python",               # 2
        "a = 1",                   # 3
        "```",                     # 4
        "<!-- skip-test -->",      # 5
        "",                        # 6
        "```python",               # 7
        "raise SystemExit",        # 8
        "```",                     # 9
        "```bash",                 # 10
        "ls",                      # 11
        "```",                     # 12
    ])
    assert python_blocks(text) == [(3, "a = 1", False), (8, "raise SystemExit", True)]


def test_unclosed_block_is_an_error():
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("```python\nx = 1\n")


# ------------------------------------------------------------ running the docs

@pytest.mark.parametrize("path", DOC_FILES, ids=_relative)
def test_examples_run(path):
    namespace = {"__name__": f"docs_{path.stem}"}
    for first_line, code, skipped in python_blocks(path.read_text(encoding="utf-8")):
        if skipped:
            continue
        # pad with blank lines so that traceback line numbers are the .md file's
        source = "\n" * (first_line - 1) + code
        compiled = compile(source, str(path), "exec")
        try:
            exec(compiled, namespace)
        except Exception as error:
            raise AssertionError(
                f"{_relative(path)}: the python block starting at line {first_line} failed: "
                f"{type(error).__name__}: {error}"
            ) from error


@pytest.mark.parametrize("name", ["derivations.md", "kernels.md", "autograd.md", "slides.md"])
def test_docs_have_examples(name):
    """Each page about code holds at least one example that runs."""
    blocks = python_blocks((ROOT / "docs" / name).read_text(encoding="utf-8"))
    assert any(not skipped for _, _, skipped in blocks), f"docs/{name} has no runnable example"


# ------------------------------------------------------- names and files cited

BACKTICKED = re.compile(r"`([^`\n]+)`")
DOTTED_NAME = re.compile(r"^(kernels|scratchnet|F)(\.[A-Za-z_]\w*)+$")
REPO_PATH = re.compile(
    r"^((?:kernels|scratchnet|tests|docs|benchmarks)/[\w/.-]+\.(?:py|md))"  # a file
    r"(?:::(\w+))?$"                                                       # ::test_name
)


def _cited(path):
    """(line number, backticked token) on the lines not marked as planned."""
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if any(word in line.lower() for word in PLANNED_WORDS):
            continue
        for token in BACKTICKED.findall(line):
            yield line_no, token.strip()


def _resolves(dotted):
    """True if `dotted` names a module, or an attribute reachable from one."""
    parts = dotted.split(".")
    if parts[0] == "F":
        parts = ["scratchnet", "functional"] + parts[1:]
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def _defines(py_file, name):
    """True if `name` is a function or class defined at any level of `py_file`."""
    tree = ast.parse(py_file.read_text(encoding="utf-8"))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return any(isinstance(node, kinds) and node.name == name for node in ast.walk(tree))


@pytest.mark.parametrize("path", CHECKED_PAGES, ids=_relative)
def test_cited_names_and_files_exist(path):
    missing = []
    for line_no, token in _cited(path):
        if DOTTED_NAME.match(token) and not _resolves(token):
            missing.append(f"line {line_no}: `{token}` does not resolve")
        match = REPO_PATH.match(token)
        if match:
            file = ROOT / match.group(1)
            if not file.exists():
                missing.append(f"line {line_no}: `{token}`: no file {match.group(1)}")
            elif match.group(2) and not _defines(file, match.group(2)):
                missing.append(f"line {line_no}: `{token}`: {match.group(2)} not defined")
    assert not missing, f"{_relative(path)} cites what does not exist:\n" + "\n".join(missing)


def test_citation_checks_can_fail():
    assert _resolves("kernels.conv_forward") and _resolves("F.conv2d")
    assert _resolves("scratchnet.functional.triplet_loss")
    assert not _resolves("kernels.no_such_kernel") and not _resolves("scratchnet.no_such_module")
    assert _defines(ROOT / "tests" / "test_docs.py", "test_citation_checks_can_fail")
    assert not _defines(ROOT / "tests" / "test_docs.py", "no_such_test")

"""The `scratchnet` command: help texts, `check` verdicts and exit status."""

import pytest

from scratchnet import check, cli
from scratchnet.functional import Function
from scratchnet.tensor import Tensor


def test_every_subcommand_has_help(capsys):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert "check" in commands
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: scratchnet {name}" in capsys.readouterr().out


def test_check_passes_and_prints_a_row_per_configuration(capsys):
    assert cli.main(["check", "--op", "relu", "--op", "conv2d", "--per-op", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith(" ok")]
    assert len(rows) == 4
    assert sum(row.startswith("conv2d ") for row in rows) == 2


def test_the_command_keeps_freed_memory_before_it_runs_anything(monkeypatch, capsys):
    order = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: order.append("keep"))
    monkeypatch.setattr(check, "run", lambda **options: order.append("run") or True)
    assert cli.main(["check", "--op", "relu"]) == 0
    assert order == ["keep", "run"]


class _WrongSquare(Function):
    """x^2 with the derivative 3x instead of 2x."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, dy):
        return 3 * self.x * dy


def test_check_fails_with_exit_status_1_on_a_wrong_backward(monkeypatch, capsys):
    def draw(rng):
        return "(3,)", _WrongSquare.apply, (Tensor(rng.standard_normal(3), requires_grad=True),)

    monkeypatch.setitem(check.CASES, "wrong_square", draw)
    assert cli.main(["check", "--op", "wrong_square", "--per-op", "1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "SOME OPS FAIL" in out


def test_unknown_op_is_named(capsys):
    assert cli.main(["check", "--op", "nope"]) == 2
    assert "scratchnet check: error: --op: unknown op(s) ['nope']" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--seed", "-1"], "argument --seed: expected an integer >= 0, got '-1'"),
    (["--per-op", "0"], "argument --per-op: expected a positive integer, got '0'"),
])
def test_check_refuses_bad_counts(argv, message, capsys):
    with pytest.raises(SystemExit) as refused:
        cli.main(["check", *argv])
    assert refused.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, words, unknown", [
    (["weights", "info", "vgg.npz", "extra"], "scratchnet weights info", "extra"),
    (["face", "list", "--bogus"], "scratchnet face list", "--bogus"),
    (["check", "--nope", "1"], "scratchnet check", "--nope 1"),
])
def test_an_unknown_argument_is_named_by_its_subcommand(argv, words, unknown, capsys):
    with pytest.raises(SystemExit) as refused:
        cli.main(argv)
    assert refused.value.code == 2
    assert capsys.readouterr().err == f"{words}: error: unrecognized arguments: {unknown}\n"

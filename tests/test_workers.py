"""The worker threads of the convolutions (kernels._workers): who gets which tiles, and sums
that come out the same on every run.

A gradient summed over the batch adds floats in groups, one group per
worker. If the groups depended on the workers' pace, the last bits of the
sum would change from run to run and training would not repeat under a
seed. The tests slow one worker down on purpose and check that the results
stay bit for bit those of an undisturbed run.
"""

import time

import numpy as np
import pytest

import kernels
from kernels import _workers
from slow_worker import slow_down_one_worker


def test_fixed_shares_deal_the_tiles_out_whatever_the_pace():
    tiles = list(range(11))
    n_workers = min(len(tiles), _workers.N_WORKERS)

    def work(share):
        taken = []
        for tile in share:
            if tile == 0:
                time.sleep(0.05)          # the worker with tile 0 falls behind
            taken.append(tile)
        return taken

    shares = _workers.run_in_workers(work, tiles, fixed_shares=True)
    assert shares == [tiles[i::n_workers] for i in range(n_workers)]


def test_drawn_shares_cover_every_tile_once():
    tiles = list(range(11))
    shares = _workers.run_in_workers(list, tiles)
    assert sorted(tile for share in shares for tile in share) == tiles


def _weight_gradient_3x3(rng):             # F(4x4, 3x3): chunks of the tile rows
    x = rng.standard_normal((128, 16, 16, 16)).astype(np.float32)
    dy = rng.standard_normal((128, 16, 16, 16)).astype(np.float32)
    return lambda: kernels.conv_backward_weight(dy, x, (16, 16, 3, 3), padding=1)


def _weight_gradient_strided(rng):         # unfolded columns, whole samples per tile
    x = rng.standard_normal((256, 8, 32, 32)).astype(np.float32)
    dy = rng.standard_normal((256, 8, 16, 16)).astype(np.float32)
    return lambda: kernels.conv_backward_weight(dy, x, (8, 8, 3, 3), stride=2, padding=1)


def _input_gradient_folded(rng):           # one picture cut into overlapping windows
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((1, 16, 256, 256)).astype(np.float32)
    return lambda: kernels.conv_backward_input(dy, w, (1, 8, 512, 512), stride=2, padding=1)


@pytest.mark.skipif(_workers.N_WORKERS < 2, reason="one worker: nothing is shared")
@pytest.mark.parametrize("case", [_weight_gradient_3x3, _weight_gradient_strided,
                                  _input_gradient_folded])
def test_sums_over_tiles_do_not_depend_on_the_workers_pace(case, monkeypatch):
    gradient = case(np.random.default_rng(0))
    undisturbed = gradient()
    slow_down_one_worker(monkeypatch)
    disturbed = gradient()
    np.testing.assert_array_equal(disturbed, undisturbed)

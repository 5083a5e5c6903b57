from __future__ import annotations

import pytest

from tlt_pipe.errors import ConfigError
from tlt_pipe.resume import choose_resume_point


def _ckpts(sizes):
    return {e: (f"ssd_resnet18_epoch_{e:03d}.hdf5", s) for e, s in sizes.items()}


def test_newest_complete_checkpoint_is_chosen():
    point = choose_resume_point(_ckpts({1: 100, 2: 100, 3: 100}), 3, None, where="train/weights")
    assert (point.epoch, point.checkpoint) == (3, "ssd_resnet18_epoch_003.hdf5")


def test_empty_truncated_and_too_new_checkpoints_are_passed_over_with_reasons():
    point = choose_resume_point(_ckpts({1: 100, 2: 100, 3: 100, 4: 10, 5: 0, 6: 100}), 5, None, where="w")
    assert point.epoch == 3
    assert "epoch_004.hdf5 is truncated" in point.reason
    assert "epoch_005.hdf5 is empty" in point.reason
    assert "epoch_006.hdf5 is newer than the last completed epoch (5)" in point.reason


def test_unknown_completed_epoch_trusts_the_files():
    assert choose_resume_point(_ckpts({1: 100, 2: 100}), None, None, where="w").epoch == 2


def test_exact_epoch_or_a_clear_error():
    assert choose_resume_point(_ckpts({1: 100, 2: 100}), 2, 1, where="w").epoch == 1
    with pytest.raises(ConfigError, match=r"--resume-epoch 7: no usable checkpoint for epoch 7 in w \(not saved\); usable epochs: 1, 2"):
        choose_resume_point(_ckpts({1: 100, 2: 100}), 2, 7, where="w")
    with pytest.raises(ConfigError, match="is empty"):
        choose_resume_point(_ckpts({1: 100, 2: 0}), 2, 2, where="w")


def test_nothing_usable_means_start_over():
    assert choose_resume_point({}, None, None, where="w") is None
    assert choose_resume_point(_ckpts({1: 0}), None, None, where="w") is None

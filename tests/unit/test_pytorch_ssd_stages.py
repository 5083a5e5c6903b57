"""ssd_mobilenet's pure pieces: the flags a checkout's train_ssd.py declares, checkpoints across resumed attempts, the
best one, the log's losses, eval_ssd.py's AP block, and the plans (no PyTorch needed)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tlt_pipe import parsers
from tlt_pipe.api import Quiet
from tlt_pipe.config import parse_config
from tlt_pipe.errors import ConfigError
from tlt_pipe.pipeline import Pipeline
from tlt_pipe.planner import Selection
from tlt_pipe.stages import pytorch_ssd

OLD_TRAIN = """
parser.add_argument("--dataset-type", default="open_images", type=str)
parser.add_argument('--datasets', '--data', nargs='+')
parser.add_argument('--net', default="mb1-ssd")
parser.add_argument('--lr', '--learning-rate', default=1e-3, type=float)
parser.add_argument('--num-epochs', '--epochs', default=30, type=int)
parser.add_argument('--use-cuda', default=True, type=str2bool)
"""


def _checkpoint(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:  # what torch.save writes
        archive.writestr("archive/data.pkl", b"weights")


def test_declared_flags_are_read_from_the_scripts_argparse():
    flags = pytorch_ssd.declared_flags(OLD_TRAIN)
    assert {"--dataset-type", "--datasets", "--data", "--lr", "--learning-rate", "--epochs", "--use-cuda"} <= flags
    assert "--resolution" not in flags and "--log-level" not in flags


def test_checkpoints_count_epochs_from_one_across_resumed_attempts_and_skip_cut_off_files(tmp_path):
    train = tmp_path / "train"
    _checkpoint(train / "part-0" / "mb1-ssd-Epoch-0-Loss-5.5.pth")
    _checkpoint(train / "part-0" / "mb1-ssd-Epoch-1-Loss-4.25.pth")
    _checkpoint(train / "mb1-ssd-Epoch-0-Loss-3.75.pth")  # the resumed attempt counts from 0 again
    (train / "mb1-ssd-Epoch-1-Loss-3.5.pth").write_bytes(b"PK\x03\x04 cut off")  # killed while saving
    (train / ".epoch-offset").write_text("2\n")
    found = pytorch_ssd.checkpoints(train)
    assert [(c["epoch"], c["validation_loss"]) for c in found] == [(1, 5.5), (2, 4.25), (3, 3.75)]
    assert found[2]["checkpoint"] == "train/mb1-ssd-Epoch-0-Loss-3.75.pth"
    assert pytorch_ssd.best(found, None)["epoch"] == 3
    assert pytorch_ssd.best(found, 2)["checkpoint"] == "train/part-0/mb1-ssd-Epoch-1-Loss-4.25.pth"
    with pytest.raises(ValueError, match="evaluate.epoch 7: no checkpoint of that epoch; epochs with one: 1, 2, 3"):
        pytorch_ssd.best(found, 7)
    with pytest.raises(ValueError, match="no complete checkpoint"):
        pytorch_ssd.best([], None)


def test_the_log_gives_each_epochs_losses_and_the_eval_block_its_ap():
    log = ("2026-12-03 10:00:00 - Epoch: 0, Step: 2/3, Avg Loss: 9.5, Avg Regression Loss 4.0, Avg Classification Loss: 5.5\n"
           "2026-12-03 10:00:01 - Epoch: 0, Step: 3/3, Avg Loss: 8.25, Avg Regression Loss 3, Avg Classification Loss: 5\n"
           "2026-12-03 10:00:02 - Epoch: 0, Validation Loss: 7.125, Validation Regression Loss 3, Validation "
           "Classification Loss: 4.1\n")
    assert pytorch_ssd.epoch_losses(log, offset=2) == {3: {"loss": 8.25, "validation_loss": 7.125}}
    step = parsers.parse_pytorch_ssd_line(log.splitlines()[0])
    assert (step.epoch, step.step, step.steps, step.loss) == (0, 2, 3, 9.5)
    assert parsers.parse_pytorch_ssd_checkpoint("mb2-ssd-lite-Epoch-12-Loss-2.0301.pth") == ("mb2-ssd-lite", 12, 2.0301)
    assert parsers.parse_pytorch_ssd_checkpoint("ssd-mobilenet.onnx") is None
    result = parsers.parse_pytorch_ssd_eval("process image 3\n\nAverage Precision Per-class:\nlpd: 0.61\nno plate: 0.25\n"
                                            "\nAverage Precision Across All Classes:0.43\n")
    assert result.ap == {"lpd": 0.61, "no plate": 0.25} and result.map == 0.43
    assert parsers.parse_pytorch_ssd_eval("Average Precision Per-class:\nlpd: 0.6\n") is None  # cut off


def test_the_detectnet_script_names_the_onnx_blobs():
    script = pytorch_ssd.detectnet_script("../export/ssd-mobilenet.onnx", "../train/labels.txt", "../data/voc/JPEGImages/*.jpg")
    assert ("exec detectnet --model=../export/ssd-mobilenet.onnx --labels=../train/labels.txt --input-blob=input_0 "
            "--output-cvg=scores --output-bbox=boxes \"${1:-../data/voc/JPEGImages/*.jpg}\"") in script


def _config(tmp_path: Path, train: str = OLD_TRAIN, *, export: str = "auto", gpus: str = "0"):
    repo = tmp_path / "ssd"
    repo.mkdir(exist_ok=True)
    (repo / "train_ssd.py").write_text(train)
    (tmp_path / "data").mkdir(exist_ok=True)
    text = (f"network: ssd_mobilenet\nname: p\ndataset: {{path: data}}\npytorch_ssd: {{repo: ssd, export_device: {export}}}\n"
            f"runner: {{kind: local, gpus: {gpus}}}\n")
    return parse_config(text, source="p.yaml", base_dir=tmp_path)


def test_the_plan_passes_only_the_flags_the_checkout_has_and_exports_on_the_cpu_without_a_gpu(tmp_path):
    steps = {s.name: s for s in Pipeline(_config(tmp_path), tmp_path / "run", key=None, events=Quiet()).dry_run(Selection())}
    assert list(steps) == ["prepare", "train", "evaluate", "export", "detectnet"]
    train = steps["train"].argv
    assert train[1].endswith("/ssd/train_ssd.py") and train[train.index("--data") + 1].endswith("/run/data/voc")
    assert train[train.index("--use-cuda") + 1] == "False" and "--resolution" not in train and "--workers" not in train
    export = steps["export"].argv
    assert export[1] == "-c" and export[2] == pytorch_ssd.CPU_EXPORT and export[3].endswith("/ssd/onnx_export.py")
    newer = OLD_TRAIN + "parser.add_argument('--resolution', type=int, default=300)\nparser.add_argument('--workers')\n"
    steps = {s.name: s for s in Pipeline(_config(tmp_path, newer, export="cuda", gpus="all"),
                                         tmp_path / "run", key=None, events=Quiet()).dry_run(Selection())}
    assert "--resolution" in steps["train"].argv and "--workers" in steps["train"].argv
    assert steps["export"].argv[1].endswith("/ssd/onnx_export.py")  # asked for CUDA: the script as it is
    with pytest.raises(ConfigError, match="export_device is cuda: onnx_export.py needs a CUDA GPU"):
        _config(tmp_path, export="cuda", gpus="0")  # said before anything starts


def test_the_live_display_follows_train_ssd_py():
    from tlt_pipe.progress import StageProgress

    state = StageProgress("train", started=0.0)
    assert state.feed_line("2026-12-03 10:00:00,1 - Epoch: 0, Step: 10/30, Avg Loss: 9.5, Avg Regression Loss 4, "
                           "Avg Classification Loss: 5.5", now=1.0)
    assert (state.epoch, state.step, state.steps, state.loss) == (1, 10, 30, 9.5)  # epochs shown from 1
    state.feed_line("2026-12-03 10:01:00,1 - Epoch: 1, Step: 10/30, Avg Loss: 7.25, Avg Regression Loss 3, "
                    "Avg Classification Loss: 4", now=61.0)
    assert (state.epoch, state.loss) == (2, 7.25)

"""Parsers of TAO output, fed with text in the exact shapes the TAO tasks print and write."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from tlt_pipe.parsers import (
    APResult,
    EpochRow,
    KerasProgress,
    best_epoch,
    checkpoint_epochs,
    last_status,
    merge_history,
    parse_ap_block,
    parse_detectnet_eval,
    parse_execution_status,
    parse_exported_path,
    parse_keras_line,
    parse_kmeans_anchors,
    parse_total_params,
    parse_prune_ratio,
    parse_status_json,
    parse_training_csv,
    parse_validation_loss,
    strip_ansi,
)

NAN = float("nan")


def training_csv(rows: list[dict], classes=("lpd",), lineterminator="\r\n") -> str:
    """A training CSV as Keras' CSVLogger writes it: sorted keys, nan on unvalidated epochs."""
    keys = sorted(["epoch", "loss", "lr", "mAP", "validation_loss"] + [f"AP_{c}" for c in classes])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keys, lineterminator=lineterminator)
    writer.writeheader()
    for row in rows:
        full = {k: NAN for k in keys}
        full.update(row)
        writer.writerow(full)
    return out.getvalue()


def ap_block(aps: dict[str, float], mean: float) -> str:
    lines = ["*******************************"]
    lines += ["{:<14}{:<6}{}".format(cls, "AP", ap) for cls, ap in aps.items()]
    lines.append("{:<14}{:<6}{}".format("", "mAP", mean))
    lines.append("*******************************")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# parse_training_csv


def test_training_csv_rows_with_and_without_validation():
    text = training_csv(
        [
            {"epoch": 1, "loss": 12.5, "lr": 1e-5},
            {"epoch": 2, "loss": 8.25, "lr": 2e-5},
            {"epoch": 3, "loss": 6.0, "lr": 3e-5, "mAP": 0.41, "validation_loss": 7.5, "AP_mask": 0.5, "AP_no-mask": 0.32},
        ],
        classes=("mask", "no-mask"),
    )
    assert text.splitlines()[0] == "AP_mask,AP_no-mask,epoch,loss,lr,mAP,validation_loss"
    rows = parse_training_csv(text)
    assert [r.epoch for r in rows] == [1, 2, 3]
    assert rows[0] == EpochRow(epoch=1, loss=12.5, lr=1e-5, map=None, validation_loss=None,
                               ap={"mask": None, "no-mask": None})
    assert rows[2].map == 0.41
    assert rows[2].validation_loss == 7.5
    assert rows[2].ap == {"mask": 0.5, "no-mask": 0.32}


def test_training_csv_columns_in_any_order_and_class_names_with_dots():
    text = "mAP,epoch,validation_loss,lr,AP_car.v2,loss\n0.5,4,1.25,0.001,0.625,2.5\n"
    (row,) = parse_training_csv(text)
    assert row == EpochRow(epoch=4, loss=2.5, lr=0.001, map=0.5, validation_loss=1.25, ap={"car.v2": 0.625})


def test_training_csv_empty_cells_nan_and_blank_lines():
    text = "epoch,loss,lr,mAP,validation_loss\n\n1,3.5,0.01,,\n\n2,3.0,0.01,NaN,nan\n\n"
    rows = parse_training_csv(text)
    assert [(r.epoch, r.map, r.validation_loss) for r in rows] == [(1, None, None), (2, None, None)]


def test_training_csv_missing_metric_columns_are_none():
    (row,) = parse_training_csv("epoch,loss\n1,0.5\n")
    assert row == EpochRow(epoch=1, loss=0.5)


def test_training_csv_truncated_last_line_is_dropped():
    full = training_csv([{"epoch": 1, "loss": 2.0, "lr": 0.1}, {"epoch": 2, "loss": 1.5, "lr": 0.1}])
    cut = full[: full.rindex("\r\n", 0, len(full) - 2) + 2 + 5]  # first 5 characters of the last row
    rows = parse_training_csv(cut)
    assert [r.epoch for r in rows] == [1]
    # The file just created: nothing, or part of the header.
    assert parse_training_csv("") == []
    assert parse_training_csv("AP_lpd,epo") == []


def test_training_csv_unterminated_complete_last_line_is_kept():
    text = "epoch,loss,lr,mAP,validation_loss\n1,2.0,0.1,nan,nan\n2,1.5,0.1,0.75,1.0"
    assert [r.epoch for r in parse_training_csv(text)] == [1, 2]


def test_training_csv_unterminated_garbled_last_line_is_dropped():
    text = "epoch,loss,lr,mAP,validation_loss\n1,2.0,0.1,nan,nan\n2,1.5,0.1,0.7x,1"
    assert [r.epoch for r in parse_training_csv(text)] == [1]


@pytest.mark.parametrize(
    ("text", "lineno"),
    [
        ("loss,lr,mAP\n1,2,3\n", 1),
        ("\n\nepoch,loss,,mAP\n1,2,3,4\n", 3),
        ("epoch,loss,loss\n1,2,3\n", 1),
    ],
)
def test_training_csv_malformed_header_names_the_line(text, lineno):
    with pytest.raises(ValueError, match=rf"^line {lineno}:"):
        parse_training_csv(text)


def test_training_csv_malformed_middle_row_names_the_line():
    text = "epoch,loss,lr,mAP,validation_loss\n1,2.0,0.1,nan,nan\n2,1.5\n3,1.0,0.1,nan,nan\n"
    with pytest.raises(ValueError, match=r"^line 3: expected 5 fields, found 2"):
        parse_training_csv(text)
    with pytest.raises(ValueError, match=r"^line 2:.*not a number"):
        parse_training_csv("epoch,loss\n1,abc\n")


def test_training_csv_accepts_bom_and_lf_lines():
    text = "\ufeff" + training_csv([{"epoch": 1, "loss": 1.0}], lineterminator="\n")
    assert [r.epoch for r in parse_training_csv(text)] == [1]


# ---------------------------------------------------------------------------------------
# merge_history / best_epoch


def rows_for(maps: dict[int, float | None]) -> list[EpochRow]:
    return [EpochRow(epoch=e, loss=1.0 / e, lr=0.01, map=m) for e, m in maps.items()]


def test_merge_history_keeps_old_rows_before_the_resumed_epoch():
    old = rows_for({1: None, 2: 0.1, 3: None, 4: 0.2, 5: None})
    new = rows_for({4: 0.25, 5: None, 6: 0.3})
    merged = merge_history(old, new)
    assert [r.epoch for r in merged] == [1, 2, 3, 4, 5, 6]
    assert merged[3].map == 0.25  # the resumed run's epoch 4 replaces the old one


def test_merge_history_with_empty_sides():
    old = rows_for({1: 0.1})
    assert merge_history(old, []) == old
    assert merge_history([], old) == old


def test_best_epoch_highest_map_among_checkpoints():
    rows = rows_for({1: None, 2: 0.3, 3: 0.9, 4: 0.5, 5: None, 6: 0.6})
    # Epoch 3 has the best mAP but no checkpoint.
    assert best_epoch(rows, [2, 4, 6]) == 6
    assert best_epoch(rows, [2, 3, 4, 6]) == 3


def test_best_epoch_tie_prefers_later_epoch():
    rows = rows_for({2: 0.5, 4: 0.5, 6: 0.4})
    assert best_epoch(rows, [2, 4, 6]) == 4


def test_best_epoch_without_validation_takes_last_checkpoint():
    rows = rows_for({1: None, 2: None, 3: 0.7})
    assert best_epoch(rows, [1, 2]) == 2
    assert best_epoch([], [5, 10]) == 10
    rows_nan = rows_for({1: NAN, 2: NAN})
    assert best_epoch(rows_nan, [1, 2]) == 2


def test_best_epoch_without_checkpoints_is_none():
    assert best_epoch(rows_for({1: 0.5}), []) is None


def test_best_epoch_later_duplicate_row_wins():
    rows = rows_for({2: 0.9}) + rows_for({2: 0.1, 4: 0.2})
    assert best_epoch(rows, [2, 4]) == 4


def test_best_epoch_from_parsed_csv_and_checkpoint_names():
    text = training_csv(
        [{"epoch": e, "loss": 1.0, "lr": 0.01} for e in range(1, 6)]
        + [{"epoch": 6, "loss": 1.0, "lr": 0.01, "mAP": 0.8, "validation_loss": 1.0, "AP_lpd": 0.8}]
    )
    weights = [f"yolov4_resnet18_epoch_{e:03d}.hdf5" for e in (2, 4, 6)]
    ckpts = checkpoint_epochs(weights, "hdf5")
    assert best_epoch(parse_training_csv(text), ckpts) == 6


# ---------------------------------------------------------------------------------------
# checkpoint_epochs


def test_checkpoint_epochs_keras_names():
    names = [
        "ssd_resnet18_epoch_001.tlt",
        "ssd_resnet18_epoch_010.tlt",
        "ssd_resnet18_epoch_1000.tlt",
        "ssd_resnet18_epoch_010.tlt.tmp",
        "ssd_resnet18_epoch_005.hdf5",
        "ssd_training_log_resnet18.csv",
        "status.json",
    ]
    assert checkpoint_epochs(names, "tlt") == {
        1: "ssd_resnet18_epoch_001.tlt",
        10: "ssd_resnet18_epoch_010.tlt",
        1000: "ssd_resnet18_epoch_1000.tlt",
    }
    assert checkpoint_epochs(names, ".hdf5") == {5: "ssd_resnet18_epoch_005.hdf5"}


def test_checkpoint_epochs_paths_are_returned_as_given():
    names = ["/runs/x/train/weights/ssd_mobilenet_v2_epoch_005.hdf5", r"C:\w\yolov4_cspdarknet53_epoch_080.hdf5"]
    assert checkpoint_epochs(names, "hdf5") == {5: names[0], 80: names[1]}


def test_checkpoint_epochs_prefix_pattern_filters_and_ambiguity_raises():
    names = ["ssd_resnet18_epoch_010.hdf5", "dssd_resnet18_epoch_010.hdf5"]
    with pytest.raises(ValueError, match="epoch 10"):
        checkpoint_epochs(names, "hdf5")
    assert checkpoint_epochs(names, "hdf5", prefix_pattern="dssd_resnet18") == {10: names[1]}


def test_checkpoint_epochs_prefix_pattern_must_match_whole_prefix():
    names = ["ssd_resnet18_epoch_010.hdf5", "dssd_resnet18_epoch_012.hdf5"]
    assert checkpoint_epochs(names, "hdf5", prefix_pattern="ssd_resnet18") == {10: names[0]}
    assert checkpoint_epochs(names, "hdf5", prefix_pattern=r"d?ssd_resnet\d+") == {10: names[0], 12: names[1]}


def test_checkpoint_epochs_detectnet_ckzip():
    names = ["model.epoch-2.ckzip", "model.epoch-12.ckzip", "model.epoch-3.tlt", "checkpoint", "weights"]
    assert checkpoint_epochs(names, "ckzip") == {2: "model.epoch-2.ckzip", 12: "model.epoch-12.ckzip"}
    assert checkpoint_epochs(names, "tlt") == {}


# ---------------------------------------------------------------------------------------
# parse_ap_block


def test_ap_block_single():
    text = "Epoch 10/80\n" + ap_block({"lpd": 0.73215}, 0.73215) + "Validation loss: 3.25\n"
    assert parse_ap_block(text) == APResult(ap={"lpd": 0.73215}, map=0.73215)


def test_ap_block_last_of_several_and_odd_class_names():
    names = {"no-mask": 0.61, "car.sedan": 0.5, "x_y:z/1": 0.25, "a_very_long_class_name": 0.125, "AP": 0.9}
    text = (
        ap_block({"lpd": 0.1}, 0.1)
        + "Validation loss: 9.0\nEpoch 11/80\n85/85 [====] - 18s 210ms/step - loss: 1.7\n"
        + ap_block(names, 0.477)
        + "Validation loss: 3.0\n"
    )
    assert "a_very_long_class_nameAP    0.125" in text  # long names are not padded
    result = parse_ap_block(text)
    assert result == APResult(ap=names, map=0.477)


def test_ap_block_incomplete_last_block_falls_back_to_previous():
    complete = ap_block({"lpd": 0.4}, 0.4)
    partial = "*******************************\n" + "{:<14}{:<6}{}".format("lpd", "AP", 0.9) + "\n"
    assert parse_ap_block(complete + partial) == APResult(ap={"lpd": 0.4}, map=0.4)


def test_ap_block_absent_or_interrupted():
    assert parse_ap_block("") is None
    assert parse_ap_block("Epoch 1/80\nExecution status: PASS\n") is None
    broken = "*******************************\nsomething else entirely here\n" + "{:<14}{:<6}{}".format("", "mAP", 0.5) + "\n" + "*" * 31 + "\n"
    assert parse_ap_block(broken) is None


def test_ap_block_with_ansi_and_crlf():
    text = ap_block({"lpd": 0.5}, 0.5).replace("\n", "\r\n")
    text = "\x1b[32m" + text + "\x1b[0m"
    assert parse_ap_block(text) == APResult(ap={"lpd": 0.5}, map=0.5)


def test_ap_block_nan_values():
    result = parse_ap_block(ap_block({"lpd": NAN}, NAN))
    assert result is not None and math.isnan(result.map) and math.isnan(result.ap["lpd"])


# ---------------------------------------------------------------------------------------
# parse_detectnet_eval

DETECTNET_EVAL = """\
Validation cost: 0.000324
Mean average_precision (in %): {mean}

class name      average precision (in %)
------------  --------------------------
mask                             {mask}
no-mask                          {nomask}

Median Inference Time: 0.005468
"""


def test_detectnet_eval_table_values_are_percent():
    text = DETECTNET_EVAL.format(mean=67.1234, mask=72.1, nomask=62.1468)
    assert parse_detectnet_eval(text) == APResult(ap={"mask": 72.1, "no-mask": 62.1468}, map=67.1234)


def test_detectnet_eval_last_one_wins():
    text = DETECTNET_EVAL.format(mean=10.0, mask=11.0, nomask=9.0) + DETECTNET_EVAL.format(mean=50.5, mask=60.0, nomask=41.0)
    assert parse_detectnet_eval(text) == APResult(ap={"mask": 60.0, "no-mask": 41.0}, map=50.5)


def test_detectnet_eval_pipe_table():
    text = """\
Mean average_precision (in %): 80.0000
+--------------+----------------------------+
| class name   |   average precision (in %) |
+==============+============================+
| face.mask    |                       90.5 |
| no_mask      |                       69.5 |
+--------------+----------------------------+
"""
    assert parse_detectnet_eval(text) == APResult(ap={"face.mask": 90.5, "no_mask": 69.5}, map=80.0)


def test_detectnet_eval_table_before_mean_and_missing_table():
    text = "class name      average precision (in %)\n----  ----\nmask  70.0\n\nMean average_precision (in %): 70.0000\n"
    assert parse_detectnet_eval(text) == APResult(ap={"mask": 70.0}, map=70.0)
    assert parse_detectnet_eval("Mean average_precision (in %): 12.5\n") == APResult(ap={}, map=12.5)
    assert parse_detectnet_eval("Validation cost: 0.1\n") is None


# ---------------------------------------------------------------------------------------
# One-line reports


def test_validation_loss_last_and_detectnet_cost():
    text = "Validation loss: 9.5\nEpoch 2/10\nValidation loss: 3.0625\n"
    assert parse_validation_loss(text) == 3.0625
    assert parse_validation_loss("Validation cost: 0.000324\n") == 0.000324
    assert parse_validation_loss("Validation loss: nan\n") is None
    assert parse_validation_loss("nothing") is None


def test_prune_ratio():
    text = "2023-01-01 INFO pruning...\nPruning ratio (pruned model / original model): 0.4123\nExecution status: PASS\n"
    assert parse_prune_ratio(text) == 0.4123
    assert parse_prune_ratio("Execution status: FAIL\n") is None


def test_execution_status_last_occurrence():
    assert parse_execution_status("Execution status: FAIL\nretry\nExecution status: PASS\n") == "PASS"
    assert parse_execution_status("Execution status: PASS\nExecution status: FAIL") == "FAIL"
    assert parse_execution_status("\x1b[1mExecution status: PASS\x1b[0m\r\n") == "PASS"
    assert parse_execution_status("Command was interrupted.\n") is None


def test_exported_path():
    text = "Using TensorFlow backend.\nSaving exported model to /workspace/run/export/model.etlt\r\nExecution status: PASS\n"
    assert parse_exported_path(text) == "/workspace/run/export/model.etlt"
    text2 = "Saving exported model to /a/one.onnx\nSaving exported model to /a/two model.onnx  \n"
    assert parse_exported_path(text2) == "/a/two model.onnx"
    assert parse_exported_path("") is None


def test_kmeans_anchors():
    anchors = [(10.5, 7.25), (20.0, 12.0), (33.33, 20.1), (45.0, 30.0), (60.0, 33.0), (80.12, 40.0),
               (100.0, 50.0), (114.94, 60.67), (200.0, 100.0)]
    text = "Start optimization iteration: 1\n" + "Please use following anchor sizes in YOLO config:\n"
    text += "".join("(%0.2f, %0.2f)\n" % a for a in anchors) + "Execution status: PASS\n"
    assert parse_kmeans_anchors(text) == anchors
    assert parse_kmeans_anchors("Execution status: FAIL\n") == []


def test_kmeans_anchors_last_header_wins():
    text = ("Please use following anchor sizes in YOLO config:\n(1.00, 2.00)\n"
            "Please use following anchor sizes in YOLO config:\n\x1b[0m(3.00, 4.00)\r\n(5.00, 6.00)\n")
    assert parse_kmeans_anchors(text) == [(3.0, 4.0), (5.0, 6.0)]


# ---------------------------------------------------------------------------------------
# status.json


def status_line(**fields) -> str:
    base = {"date": "3/7/2024", "time": "9:5:3", "status": "RUNNING", "verbosity": "INFO", "message": "Training loop in progress"}
    base.update(fields)
    return json.dumps(base)


def test_status_json_lines_with_garbage_and_truncated_tail():
    lines = [
        status_line(status="STARTED", message="Starting Training Loop."),
        status_line(epoch=1, max_epoch=80, time_per_epoch="0:00:18.2", eta="0:24:00",
                    graphical={"loss": 12.5, "learning_rate": 1e-5}),
        "this is not json",
        "[1, 2]",
        status_line(epoch=2, max_epoch=80, kpi={"mean average_precision": 0.41}),
    ]
    text = "\n".join(lines) + "\n" + status_line(status="SUCCESS")[:20]
    entries = parse_status_json(text)
    assert [e["status"] for e in entries] == ["STARTED", "RUNNING", "RUNNING"]
    assert entries[1]["graphical"]["loss"] == 12.5
    assert last_status(entries)["epoch"] == 2


def test_last_status():
    assert last_status([]) is None
    assert last_status([{"status": "STARTED"}, {"message": "no status"}, {"status": "FAILURE", "message": "x"},
                        {"date": "1/1/2024"}]) == {"status": "FAILURE", "message": "x"}
    assert last_status(parse_status_json(status_line(status="SUCCESS") + "\n"))["status"] == "SUCCESS"


# ---------------------------------------------------------------------------------------
# Keras lines


def test_keras_epoch_line():
    assert parse_keras_line("Epoch 3/80\n") == KerasProgress(kind="epoch", epoch=3, max_epoch=80)


def test_keras_final_step_line():
    line = "85/85 [==============================] - 18s 210ms/step - loss: 1.7293"
    p = parse_keras_line(line)
    assert p == KerasProgress(kind="step", step=85, steps=85, loss=1.7293, eta_seconds=None,
                              elapsed_seconds=18.0, metrics={"loss": 1.7293})


def test_keras_partial_step_lines_and_eta_formats():
    p = parse_keras_line("12/85 [===>..........................] - ETA: 14s - loss: 1.9")
    assert (p.kind, p.step, p.steps, p.loss, p.eta_seconds) == ("step", 12, 85, 1.9, 14.0)
    assert parse_keras_line("1/850 [..............................] - ETA: 1:02 - loss: 20.5").eta_seconds == 62.0
    assert parse_keras_line("1/8500 [..............................] - ETA: 2:03:04 - loss: 2e+01").eta_seconds == 7384.0


def test_keras_more_metrics_and_nan_loss():
    p = parse_keras_line("40/85 [=========>....................] - ETA: 9s - loss: nan - lr: 1.0000e-04")
    assert p.loss is None and p.metrics == {"loss": None, "lr": 1e-4}


def test_keras_carriage_returns_and_ansi():
    line = ("\x1b[A 1/85 [..............................] - ETA: 40s - loss: 3.0\r"
            " 2/85 [..............................] - ETA: 39s - loss: 2.9\r"
            "\x1b[K85/85 [==============================] - 18s 210ms/step - loss: 1.7293\r\n")
    p = parse_keras_line(line)
    assert (p.step, p.steps, p.loss, p.eta_seconds) == (85, 85, 1.7293, None)
    # A trailing partial redraw that is not understood falls back to the last understood one.
    assert parse_keras_line(" 2/85 [....] - ETA: 39s - loss: 2.9\rUsing TensorFlow").step == 2


def test_keras_saving_checkpoint_line():
    line = "\nEpoch 00003: saving model to /workspace/results/weights/ssd_resnet18_epoch_003.hdf5"
    p = parse_keras_line(line.strip("\n"))
    assert p == KerasProgress(kind="checkpoint", epoch=3,
                              saved_path="/workspace/results/weights/ssd_resnet18_epoch_003.hdf5")


@pytest.mark.parametrize("line", ["", "Using TensorFlow backend.", "Epoch 3", "Validation loss: 2.0", "3/80 epochs"])
def test_keras_other_lines(line):
    assert parse_keras_line(line) is None


def test_strip_ansi():
    assert strip_ansi("\x1b[1;31mred\x1b[0m \x1b]0;title\x07ok") == "red ok"


def test_total_params_come_from_the_end_of_keras_model_summary():
    summary = ("Layer (type)    Output Shape    Param #\n" + "=" * 40 + "\nTotal params: 13,187,456\n"
               "Trainable params: 13,121,600\nNon-trainable params: 65,856\n")
    assert parse_total_params(summary) == 13187456
    assert parse_total_params("Total params: 1,000\n...\n\x1b[0mTotal params: 640\n") == 640  # the last one
    assert parse_total_params("Epoch 1/6\n") is None

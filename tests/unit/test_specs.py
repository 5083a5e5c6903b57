from __future__ import annotations

import pytest
from google.protobuf import text_format

from tlt_pipe.config import load_config
from tlt_pipe.errors import ConfigError, SpecError
from tlt_pipe.networks import get_network
from tlt_pipe.networks.ssd import check_ssd_spec
from tlt_pipe.planner import build_context
from tlt_pipe.spec_schema import message_class
from tlt_pipe.specs import apply_overrides, build_spec, parse_spec, pb_string
from tlt_pipe.stages import retrain, tfrecords, train

TOOLKITS = ["2.0", "3.21.11", "3.22.05", "4.0", "5.0"]


def _ctx(write_config, tmp_path, toolkit="5.0", extra=""):
    config = load_config(write_config(toolkit, extra))
    return build_context(config, tmp_path / "run", None, key="k3y")


def test_pb_string_escapes_quotes_backslashes_and_newlines():
    assert pb_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    message = text_format.Parse(f"target_class_mapping {{ key: {pb_string(chr(34) + 'x')} value: {pb_string('plaque')} }}",
                                message_class("5.0", "dataset_convert")())
    assert list(message.target_class_mapping) == ['"x']


def test_class_name_with_a_quote_does_not_break_the_spec(write_config, tmp_path):
    ctx = _ctx(write_config, tmp_path, extra="")
    ctx = build_context(ctx.config.model_copy(update={"dataset": ctx.config.dataset.model_copy(
        update={"classes": {"a": 'we"ird'}})}), tmp_path / "run", None, key=None)
    text = train.experiment_spec(ctx, ctx.config.train, source="train")
    spec = parse_spec(text, "5.0", "ssd", source="t")
    assert list(spec.dataset_config.target_class_mapping) == ['we"ird']


@pytest.mark.parametrize("toolkit", TOOLKITS)
def test_every_ssd_template_renders_to_a_valid_spec(write_config, tmp_path, toolkit):
    ctx = _ctx(write_config, tmp_path, toolkit)
    for plan in (tfrecords.plan(ctx), train.plan_train(ctx), retrain.plan(ctx)):
        for path, text in plan.specs.items():
            kind = "dataset_convert" if "tfrecords" in path else "ssd"
            spec = parse_spec(text, ctx.toolkit.schema, kind, source=path)
            if kind == "ssd":
                assert check_ssd_spec(spec) == []


def test_train_and_retrain_specs_carry_the_config(write_config, tmp_path):
    ctx = _ctx(write_config, tmp_path)
    spec = parse_spec(train.plan_train(ctx).specs["specs/train.txt"], "5.0", "ssd", source="t")
    assert spec.training_config.num_epochs == 4
    assert spec.augmentation_config.output_width == 320
    assert spec.ssd_config.arch == "resnet" and spec.ssd_config.nlayers == 18
    assert spec.dataset_config.validation_data_sources[0].label_directory_path == "/tltpipe/run/data/kitti/val/labels"
    again = parse_spec(retrain.plan(ctx).specs["specs/retrain.txt"], "5.0", "ssd", source="r")
    assert again.training_config.num_epochs == 3
    assert again.training_config.regularizer.type == 0  # NO_REG


def test_spec_overrides_set_any_field_and_are_checked(write_config, tmp_path):
    extra = "spec_overrides:\n  experiment: {training_config.n_workers: 3, nms_config.top_k: 50}\n" \
            "  retrain: {training_config.regularizer: {type: L2, weight: 0.001}}\n"
    ctx = _ctx(write_config, tmp_path, extra=extra)
    t = parse_spec(train.plan_train(ctx).specs["specs/train.txt"], "5.0", "ssd", source="t")
    r = parse_spec(retrain.plan(ctx).specs["specs/retrain.txt"], "5.0", "ssd", source="r")
    assert (t.training_config.n_workers, t.nms_config.top_k) == (3, 50)
    assert r.training_config.regularizer.type == 2 and r.training_config.regularizer.weight == pytest.approx(0.001)


def test_spec_overrides_replace_a_map_field(write_config, tmp_path):
    extra = "spec_overrides:\n  experiment: {dataset_config.target_class_mapping: {car: vehicle, truck: vehicle}}\n"
    ctx = _ctx(write_config, tmp_path, extra=extra)
    spec = parse_spec(train.plan_train(ctx).specs["specs/train.txt"], "5.0", "ssd", source="t")
    assert dict(spec.dataset_config.target_class_mapping) == {"car": "vehicle", "truck": "vehicle"}
    with pytest.raises(SpecError, match="target_class_mapping.a: expected a string, got 3"):
        apply_overrides(message_class("5.0", "ssd")(), {"dataset_config.target_class_mapping": {"a": 3}},
                        source="spec_overrides.train")


@pytest.mark.parametrize("overrides, fragment", [
    ({"training_config.n_wrokers": 3}, 'spec_overrides.train.training_config.n_wrokers: TrainingConfig has no field named "n_wrokers"'),
    ({"training_config.num_epochs": "ten"}, "spec_overrides.train.training_config.num_epochs: expected an integer"),
    ({"training_config.regularizer.type": "L3"}, "is not one of NO_REG, L1, L2"),
    ({"training_config.num_epochs.x": 1}, "is not a message field"),
    ({"random_seed": -1}, "spec_overrides.train.random_seed: Value out of range: -1"),  # a uint32
    ({"training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate": float("nan")},
     "soft_start_annealing_schedule.max_learning_rate: expected a finite number of magnitude at most 3.403e+38, got nan"),
    ({"augmentation_config.image_mean": {"r": float("-inf")}}, "augmentation_config.image_mean.r: expected a finite number"),
    ({"eval_config.matching_iou_threshold": 1e39}, "matching_iou_threshold: expected a finite number"),  # inf as a float
    ({"eval_config.matching_iou_threshold": 10**400}, "matching_iou_threshold: expected a finite number"),  # no float
])
def test_bad_overrides_name_the_field(overrides, fragment):
    spec = message_class("5.0", "ssd")()
    with pytest.raises(SpecError) as info:
        apply_overrides(spec, overrides, source="spec_overrides.train")
    assert fragment in str(info.value)


def test_unknown_field_in_a_template_is_rejected_before_any_container():
    with pytest.raises(SpecError, match='has no field named "num_epoch"'):
        parse_spec("training_config { num_epoch: 3 }", "5.0", "ssd", source="train")


def test_loader_checks_reject_out_of_range_values(write_config, tmp_path):
    ctx = _ctx(write_config, tmp_path)
    with pytest.raises(SpecError, match=r"train: nms_config.confidence_threshold: 1.5 is not in \(0, 1\)"):
        build_spec("ssd/experiment.txt.j2",
                   {"network": "ssd", "model": ctx.config.model, "train": ctx.config.train,
                    "data": tfrecords.data_context(ctx, records=True)},
                   schema="5.0", kind="ssd", overrides={"nms_config.confidence_threshold": 1.5},
                   check=get_network("ssd", "5.0").check_spec, source="train")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_a_spec_override_that_is_not_a_finite_number_is_refused_naming_its_key(write_config, tmp_path, value):
    extra = f"spec_overrides:\n  train: {{training_config.learning_rate.soft_start_annealing_schedule.max_learning_rate: {value}}}\n"
    with pytest.raises(ConfigError) as info:  # when the config is read, at its line
        _ctx(write_config, tmp_path, extra=extra)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'lpd.yaml'}:13: spec_overrides.train.training_config.learning_rate."
                              "soft_start_annealing_schedule.max_learning_rate: expected a finite number")
    assert "\n" not in message


def _fresh_environment(monkeypatch, cache):
    from tlt_pipe import specs

    monkeypatch.setenv("TLTPIPE_CACHE", str(cache))
    env = specs._environment()
    compiled = []
    original = env.compile
    monkeypatch.setattr(env, "compile", lambda *a, **k: compiled.append(a) or original(*a, **k))
    return env, compiled


def _render(env):
    data = {"root": "/d", "image_dir": "images", "label_dir": "labels", "image_extension": ".jpg", "num_shards": 2}
    return env.get_template("ssd/tfrecords.txt.j2").render(data=data)


def test_a_compiled_template_is_reused_from_the_users_cache(monkeypatch, tmp_path):
    first, compiled = _fresh_environment(monkeypatch, tmp_path / "cache")
    text = _render(first)
    assert compiled and list((tmp_path / "cache" / "templates").iterdir())
    second, compiled_again = _fresh_environment(monkeypatch, tmp_path / "cache")
    assert _render(second) == text
    assert compiled_again == []


def test_a_damaged_cache_entry_is_compiled_again(monkeypatch, tmp_path):
    first, _ = _fresh_environment(monkeypatch, tmp_path / "cache")
    text = _render(first)
    for entry in (tmp_path / "cache" / "templates").iterdir():
        entry.write_bytes(entry.read_bytes()[:40])  # cut short
    second, compiled = _fresh_environment(monkeypatch, tmp_path / "cache")
    assert _render(second) == text and compiled


def test_a_cache_folder_others_can_write_is_not_used(monkeypatch, tmp_path):
    """Cache entries are loaded as code, so a folder another user could write into is left alone."""
    shared = tmp_path / "shared"
    (shared / "templates").mkdir(parents=True)
    (shared / "templates").chmod(0o777)
    env, compiled = _fresh_environment(monkeypatch, shared)
    text = _render(env)
    assert compiled and not list((shared / "templates").iterdir())
    again, compiled_again = _fresh_environment(monkeypatch, shared)
    assert _render(again) == text and compiled_again


def test_an_unwritable_cache_costs_a_compile_not_the_render(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    env, compiled = _fresh_environment(monkeypatch, blocked)
    assert "/d" in _render(env) and compiled

from __future__ import annotations

from pathlib import Path

import pytest

from tlt_pipe.config import NETWORKS, load_config, parse_config
from tlt_pipe.errors import ConfigError
from tlt_pipe.registry import SCORED_STAGES
from tlt_pipe.networks import NETWORKS as NETWORKS_BY_NAME
from tlt_pipe.starter import starter_config


def _error(text: str, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="lpd.yaml", base_dir=Path("/tmp"), **kw)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_key_names_file_line_and_field():
    text = "network: ssd\nname: lpd\ndataset:\n  path: x\ntrain:\n  epochs: 3\n  bach_size: 4\n"
    assert _error(text) == "lpd.yaml:7: train.bach_size: unknown key (check the spelling; `tltpipe init` writes every key)"


def test_out_of_range_value_points_at_its_line():
    text = "network: ssd\nname: lpd\ndataset:\n  path: x\n  val_split: 150\n"
    assert _error(text).startswith("lpd.yaml:5: dataset.val_split: Input should be less than 100")


def test_missing_section_and_wrong_literal():
    assert _error("network: ssd\nname: lpd\n") == "lpd.yaml:1: dataset: required key is missing"
    message = _error("network: ssd\nname: lpd\ndataset: {path: x}\nexport: {data_type: fp64}\n")
    assert message.startswith("lpd.yaml:4: export.data_type:") and "'fp64'" in message


def test_invalid_yaml_and_unknown_toolkit():
    assert _error("network: ssd\nname: [\n").startswith("lpd.yaml:")
    assert "unknown toolkit version" in _error('network: ssd\nname: a\ntoolkit: "9.9"\ndataset: {path: x}\n')


def test_a_toolkit_the_network_does_not_ship_in_names_its_line():
    message = _error("network: rtdetr\nname: a\ntoolkit: 5.0\ndataset: {path: x}\n")
    assert message == "lpd.yaml:3: toolkit: rtdetr is not available in toolkit 5.0; it ships in: 6.26.3"


def test_network_on_command_line_must_match():
    message = _error("network: yolo_v4\nname: a\ndataset: {path: x}\n", network="ssd")
    assert message.startswith("lpd.yaml:1: network:")


def test_toolkit_float_and_aliases_are_normalised():
    for written, canonical in (("5.0", "5.0"), ('"4"', "4.0"), ("3.21.11", "3.21.11"), ("2.0", "2.0")):
        config = parse_config(f"network: ssd\nname: a\ntoolkit: {written}\ndataset: {{path: x}}\n",
                              source="a", base_dir=Path("/tmp"))
        assert config.toolkit == canonical


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    path = tmp_path / "sub" / "c.yaml"
    path.parent.mkdir()
    path.write_text("network: ssd\nname: a\ndataset: {path: ../data}\nmodel: {pretrained: w.hdf5}\n")
    config = load_config(path)
    assert config.dataset.path == (tmp_path / "data").resolve()
    assert config.model.pretrained == (tmp_path / "sub" / "w.hdf5").resolve()


def test_set_overrides_and_their_errors():
    text = "network: ssd\nname: a\ndataset: {path: x}\n"
    config = parse_config(text, source="a", base_dir=Path("/tmp"), sets=["runner.gpus=0", "train.epochs=7"])
    assert config.runner.gpus == 0 and config.train.epochs == 7
    assert _error(text, sets=["train.epochs=zero"]).startswith("--set train.epochs=zero: train.epochs:")
    assert _error(text, sets=["oops"]).startswith("--set oops: expected KEY=VALUE")


def test_set_cannot_change_the_network_the_command_names():
    text = "network: rtdetr\nname: a\ndataset: {path: x}\n"
    assert _error(text, network="rtdetr", sets=["network=dino"]).startswith(
        "--set network=dino: the network is the command's ('rtdetr' here)")


def test_set_of_an_unknown_key_names_the_option_not_the_file():
    text = "network: ssd\nname: a\ndataset: {path: x}\ntrain: {epochs: 3}\n"
    assert _error(text, sets=["train.optimizer.lr=1"]).startswith("--set train.optimizer.lr=1: train.optimizer: unknown key")


def test_set_of_a_pytorch_spec_key_goes_to_spec_overrides_as_in_a_sweep():
    text = "network: rtdetr\nname: a\ndataset: {path: x}\nspec_overrides: {experiment: {model.num_queries: 100}}\n"
    config = parse_config(text, source="a", base_dir=Path("/tmp"), sets=["train.optim.lr=0.5", "train.epochs=4"])
    assert config.spec_overrides["experiment"] == {"model.num_queries": 100, "train.optim.lr": 0.5}
    assert config.train.epochs == 4  # a config key stays one
    assert _error(text, sets=["train.optim.lr=abc"]).startswith(
        "--set train.optim.lr=abc: train.optim.lr: RT-DETR wants a number here")
    assert _error(text, sets=["train.optim.lrr=1"]).endswith("did you mean train.optim.lr? (nor is it a config key)")


def test_a_swept_spec_value_that_is_wrong_is_named_by_its_point():
    from tlt_pipe.config import with_values

    config = parse_config("network: rtdetr\nname: a\ndataset: {path: x}\n", source="a", base_dir=Path("/tmp"))
    with pytest.raises(ConfigError) as info:
        with_values(config, {"train.optim.lr": "abc"}, source="sweep point 1-lr=abc")
    assert str(info.value).startswith("sweep point 1-lr=abc: train.optim.lr=abc: spec_overrides.experiment.train.optim.lr: "
                                      "RT-DETR wants a number here")


@pytest.mark.parametrize(("section", "message"), [  # values Docker would refuse when a stage starts
    ("docker: {shm_size: lots}", "lpd.yaml:4: docker.shm_size: 'lots' is not a size Docker reads"),
    ("docker: {shm_size: 1t}", "lpd.yaml:4: docker.shm_size: '1t' is not a size Docker reads"),
    ("docker: {ulimits: {memlock: 100000000000000000000000}}",
     "lpd.yaml:4: docker.ulimits.memlock: 100000000000000000000000 is not a limit Docker takes (-1 for unlimited"),
    ("docker: {ulimits: {stack: -2}}", "lpd.yaml:4: docker.ulimits.stack: -2 is not a limit Docker takes"),
    ("runner: {gpus: [-1]}", "lpd.yaml:4: runner.gpus: GPU indices are 0 or more, not [-1]"),
    ("runner: {gpus: [1, 1]}", "lpd.yaml:4: runner.gpus: a GPU index is listed twice in [1, 1]"),
    ("docker: {ports: {8888/http: 8888}}", "lpd.yaml:4: docker.ports.8888/http: not a container port"),
    ("docker: {ports: {'70000': 8888}}", "lpd.yaml:4: docker.ports.70000: not a container port"),
    ("docker: {ports: {'8888': 0}}", "lpd.yaml:4: docker.ports.8888: '0' is not a host port (1 to 65535)"),
    ("docker: {ports: {'8888': 'localhost'}}", "lpd.yaml:4: docker.ports.8888: 'localhost' is not a host port"),
    # Values that would reach a command line unbounded, or as options of their own:
    ("export: {batch_size: 1000000000000000000000000000000}", "lpd.yaml:4: export.batch_size: Input should be less than"),
    ("engine: {workspace_mb: 1000000000000000000000000000000}", "lpd.yaml:4: engine.workspace_mb: Input should be less"),
    ("prune: {granularity: 1000000000000000000000000000000}", "lpd.yaml:4: prune.granularity: Input should be less"),
    ("runner: {jobs: 1000000000000000000000000000000}", "lpd.yaml:4: runner.jobs: Input should be less"),
    ("prune: {excluded_layers: [--evil]}", "lpd.yaml:4: prune.excluded_layers: '--evil' is not a layer name"),
    ("prune: {excluded_layers: [a b]}", "lpd.yaml:4: prune.excluded_layers: 'a b' is not a layer name"),
    # Spec fields tltpipe writes from a config key and reads back (once: a run that failed after training):
    ("spec_overrides: {train: {training_config.num_epochs: 5}}",
     "lpd.yaml:4: spec_overrides.train.training_config.num_epochs: training_config.num_epochs is written from "
     "train.epochs, which tltpipe also reads back; set that key instead"),
    ("spec_overrides: {retrain: {training_config: {checkpoint_interval: 2}}}",
     "lpd.yaml:4: spec_overrides.retrain.training_config: training_config.checkpoint_interval is written from "
     "retrain.checkpoint_interval"),
    ("spec_overrides: {experiment: {ssd_config.nlayers: 34}}",
     "lpd.yaml:4: spec_overrides.experiment.ssd_config.nlayers: ssd_config.nlayers is written from model.nlayers"),
    ("spec_overrides: {train: {augmentation_config.output_height: 300}}",
     "lpd.yaml:4: spec_overrides.train.augmentation_config.output_height: augmentation_config.output_height is "
     "written from model.input_height"),
    # Values sbatch would refuse when the first stage is submitted:
    ("runner: {slurm: {time: abc}}", "lpd.yaml:4: runner.slurm.time: 'abc' is not a time limit sbatch reads"),
    ("runner: {slurm: {time: 24:00:00}}", "lpd.yaml:4: runner.slurm.time: YAML read the time limit as the number "
                                         "86400: quote it (time: '24:00:00')"),
    ("runner: {slurm: {mem: lots}}", "lpd.yaml:4: runner.slurm.mem: 'lots' is not a memory size sbatch reads"),
    # TF1 spec overrides the toolkit's schema refuses, named at the config's line (once only when a stage was planned):
    ("spec_overrides: {train: {training_config.n_wrokers: 3}}",
     'lpd.yaml:4: spec_overrides.train.training_config.n_wrokers: TrainingConfig has no field named "n_wrokers"'),
    ("spec_overrides: {experiment: {training_config.regularizer.type: L3}}",
     "lpd.yaml:4: spec_overrides.experiment.training_config.regularizer.type: 'L3' is not one of NO_REG, L1, L2"),
    ("spec_overrides: {tfrecords: {kitti_config.foo: 1}}",
     'lpd.yaml:4: spec_overrides.tfrecords.kitti_config.foo: KITTIConfig has no field named "foo"'),
    ("spec_overrides: {inference: {inferencer_config.batch_size: 2}}",  # once accepted, then never applied
     "lpd.yaml:4: spec_overrides.inference: ssd's inference reads no spec of its own (DetectNet_v2's does)"),
    # true/false, which pydantic would take as 1/0:
    ("train: {epochs: true}", "lpd.yaml:4: train.epochs: expected a number, got True (YAML reads true, false, yes"),
    ("train: {batch_size: no}", "lpd.yaml:4: train.batch_size: expected a number, got False"),
    ("engine: {workspace_mb: on}", "lpd.yaml:4: engine.workspace_mb: expected a number, got True"),
    ("docker: {ulimits: {memlock: true}}", "lpd.yaml:4: docker.ulimits.memlock: expected a number, got True"),  # once 1
    ("model: {freeze_blocks: [0, yes]}", "lpd.yaml:4: model.freeze_blocks.1: expected a number, got True"),
    ("train: {random_seed: false}", "lpd.yaml:4: train.random_seed: expected a number, got False"),
    ("runner: {env: {FOO: true}}", "lpd.yaml:4: runner.env.FOO: got True: YAML reads true, false, yes, no, on and off"),
    # Environment variables execve would refuse when a stage starts:
    ("runner: {env: {'': x}}", "lpd.yaml:4: runner.env.: '' is not an environment variable name"),
    ("runner: {env: {A=B: x}}", "lpd.yaml:4: runner.env.A=B: 'A=B' is not an environment variable name"),
    ('runner: {env: {"A\\0": x}}', "lpd.yaml:4: runner.env.A\x00: 'A\\x00' is not an environment variable name"),
    ('runner: {env: {A: "x\\0y"}}', "lpd.yaml:4: runner.env.A: a NUL character cannot be in an environment"),
    ("runner: {env: {A: [1]}}", "lpd.yaml:4: runner.env.A: Input should be a valid string"),
])
def test_values_a_stage_would_fail_on_are_refused_when_the_config_is_read(section, message):
    assert _error(f"network: ssd\nname: a\ndataset: {{path: x}}\n{section}\n").startswith(message)


def test_runner_env_numbers_are_written_as_yaml_reads_them():
    text = "network: ssd\nname: a\ndataset: {path: x}\nrunner: {env: {OMP_NUM_THREADS: 4, RATIO: 0.5, NAME: x}}\n"
    assert parse_config(text, source="lpd.yaml", base_dir=Path("/tmp")).runner.env == \
        {"OMP_NUM_THREADS": "4", "RATIO": "0.5", "NAME": "x"}
    assert _error(text.replace("NAME: x", "X: true")).startswith("lpd.yaml:4: runner.env.X: got True: YAML reads")
    assert _error(text.replace("NAME: x", "X: [1]")).startswith("lpd.yaml:4: runner.env.X: Input should be a valid string")
    assert _error(text.replace("NAME: x", "ON: x")).startswith(
        "lpd.yaml:4: runner.env.True: True is not an environment variable name (not empty, no '=', no NUL) (YAML reads "
        "on, off, yes and no as true and false: quote it)")


def test_a_spec_override_only_a_set_option_gives_is_blamed_on_that_option():
    text = "network: ssd\nname: a\ndataset: {path: x}\n"
    assert _error(text, sets=["spec_overrides.nosuchstage.x=1"]).startswith(
        "--set spec_overrides.nosuchstage.x=1: spec_overrides.nosuchstage: Input should be 'experiment'")  # once line 1
    assert _error(text, sets=["spec_overrides.train.training_config.foo=1"]).startswith(
        '--set spec_overrides.train.training_config.foo=1: spec_overrides.train.training_config: foo: TrainingConfig '
        'has no field named "foo"')
    in_file = text + "spec_overrides:\n  train: {training_config.n_workers: 2}\n"
    assert _error(in_file, sets=["spec_overrides.nosuchstage.x=1"]).startswith("--set spec_overrides.nosuchstage.x=1:")


def test_a_shm_size_given_as_a_number_is_bytes():
    text = "network: ssd\nname: a\ndataset: {path: x}\ndocker: {shm_size: 1073741824}\n"  # once "a valid string"
    assert parse_config(text, source="lpd.yaml", base_dir=Path("/tmp")).docker.shm_size == "1073741824"


def test_slurm_time_limits_and_memory_sizes_sbatch_reads_are_kept():
    for time in ("90", "90:30", "24:00:00", "2-00", "2-12:00", "2-12:00:00", "UNLIMITED", "infinite"):
        text = f"network: ssd\nname: a\ndataset: {{path: x}}\nrunner: {{slurm: {{time: '{time}', mem: 4096}}}}\n"
        slurm = parse_config(text, source="lpd.yaml", base_dir=Path("/tmp")).runner.slurm
        assert (slurm.time, slurm.mem) == (time, "4096")


def test_docker_ports_docker_accepts_are_kept():
    text = "network: ssd\nname: a\ndataset: {path: x}\ndocker: {ports: {'8888': 8888, 6006/tcp: '16006', 5000/udp: 5000}}\n"
    assert parse_config(text, source="lpd.yaml", base_dir=Path("/tmp")).docker.ports == \
        {"8888": 8888, "6006/tcp": "16006", "5000/udp": 5000}


def test_anchor_counts_and_ulimit_names_are_checked_at_their_lines():
    assert _error("network: yolo_v4\nname: a\ndataset: {path: x}\nanchors: {count: 10}\n").startswith(
        "lpd.yaml:4: anchors.count: 10 anchors do not split into the 3 anchor shapes of yolo_v4")
    assert _error("network: ssd\nname: a\ndataset: {path: x}\ndocker:\n  ulimits: {bogus: 1}\n").startswith(
        "lpd.yaml:5: docker.ulimits.bogus: not a ulimit Docker sets")


def test_retrain_inherits_train_but_not_the_regularizer():
    config = parse_config("network: ssd\nname: a\ndataset: {path: x}\ntrain: {epochs: 9, batch_size: 4}\n"
                          "retrain: {epochs: 5}\n", source="a", base_dir=Path("/tmp"))
    retrain = config.retrain_resolved
    assert (retrain.epochs, retrain.batch_size, retrain.regularizer.type) == (5, 4, "NO_REG")


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: no such config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("toolkit", ["2.0", "3.21.11", "5.0"])
def test_init_writes_a_valid_commented_config(toolkit):
    text = starter_config("ssd", toolkit=toolkit)
    assert text.lstrip().startswith("#")
    config = parse_config(text, source="init", base_dir=Path("/tmp"))
    assert config.network == "ssd" and config.toolkit == toolkit
    assert "TLTPIPE_KEY" in text


def test_every_network_name_is_accepted_by_the_schema():
    for network in NETWORKS:
        extra = "pytorch_ssd: {repo: ssd}\nrunner: {kind: local}\n" if network == "ssd_mobilenet" else ""
        parse_config(f"network: {network}\nname: a\ndataset: {{path: x}}\n{extra}", source="a", base_dir=Path("/tmp"))


def test_ssd_mobilenet_names_its_checkout_and_where_pytorch_is():
    text = "network: ssd_mobilenet\nname: a\ndataset: {path: x}\n"
    assert _error(text).startswith("lpd.yaml:1: pytorch_ssd: repo: ssd_mobilenet needs your pytorch-ssd checkout")
    message = _error(text + "pytorch_ssd: {repo: ssd}\n")
    assert "runner.image" in message or "runner: image:" in message
    config = parse_config(text + "pytorch_ssd: {repo: ssd}\nrunner: {kind: local}\n", source="a", base_dir=Path("/tmp"))
    assert config.pytorch_ssd.repo == Path("/tmp/ssd") and config.pytorch_ssd.net == "mb1-ssd"


def test_tracker_credentials_are_refused_in_the_config():
    text = "network: ssd\nname: a\ndataset: {path: x}\ntracking:\n  mlflow: {tracking_uri: 'https://me:s3cret@mlflow.example'}\n"
    message = _error(text)
    assert message.startswith("lpd.yaml:5: tracking.mlflow.tracking_uri:") and "MLFLOW_TRACKING_PASSWORD" in message
    assert "s3cret" not in message
    ok = parse_config(text.replace("me:s3cret@", ""), source="a", base_dir=Path("/tmp"))
    assert ok.tracking.mlflow.tracking_uri == "https://mlflow.example"


def test_docker_spelling_of_runner_keys_still_works_with_a_note(tmp_path):
    text = ("network: ssd\nname: x\ndataset: {path: d}\n"
            "docker: {gpus: 0, image: my/tao:tf, env: {A: b}, shm_size: 2G}\n")
    config = parse_config(text, source="old.yaml", base_dir=tmp_path)
    assert (config.runner.gpus, config.runner.image, config.runner.env) == (0, "my/tao:tf", {"A": "b"})
    assert config.docker.shm_size == "2G"
    assert config.notes == ["docker.image, docker.gpus, docker.env: these keys are runner.* now (runner: "
                            "{image, gpus, env}); the docker: spelling still works"]
    assert "notes" not in config.model_dump()
    with pytest.raises(ConfigError, match="docker.gpus and runner.gpus are both set; keep runner.gpus"):
        parse_config(text + "runner: {gpus: all}\n", source="old.yaml", base_dir=tmp_path)
    with pytest.raises(ConfigError, match="notes: unknown key"):
        parse_config(text + "notes: [hello]\n", source="old.yaml", base_dir=tmp_path)


@pytest.mark.parametrize("key, value, fragment", [
    ("train.epochs", "4294967296", "less than or equal to 4294967295"),  # TAO's num_epochs is a uint32
    ("train.random_seed", "-1", "greater than or equal to 0"),
    ("retrain.batch_size", "4294967296", "less than or equal to 4294967295"),
    ("model.nlayers", "2147483648", "less than or equal to 2147483647"),  # detectnet_v2: an int32
    ("model.freeze_blocks", "[0, -1]", "greater than or equal to 0"),
    ("model.input_width", "100000", "less than or equal to 8192"),
    ("train.learning_rate.max", "1.0e+308", "1e+308 is past the largest 32-bit float"),  # inf in the spec
    ("train.regularizer.weight", ".inf", "finite number"),
    ("train.learning_rate.min", ".nan", "finite number"),
    ("tune.seed", "4294967296", "less than or equal to 4294967295"),  # Optuna's samplers take 0..2**32-1
])
def test_a_value_past_its_spec_field_type_names_the_config_key(key, value, fragment):
    *sections, last = key.split(".")
    lines = ["network: ssd", "name: lpd", "dataset: {path: x}"]
    lines += ["  " * depth + f"{section}:" for depth, section in enumerate(sections)]
    lines.append("  " * len(sections) + f"{last}: {value}")
    message = _error("\n".join(lines) + "\n")
    assert message.startswith(f"lpd.yaml:{len(lines)}: {key}")  # the key and its own line, not a spec line
    assert fragment in message


def test_the_largest_values_a_spec_field_holds_are_accepted():
    sets = ["train.epochs=4294967295", "train.random_seed=4294967295", "model.nlayers=2147483647",
            "train.learning_rate.max=3.4e38", "train.regularizer.weight=0", "train.random_seed=0"]
    config = parse_config("network: ssd\nname: a\ndataset: {path: x}\n", source="a", base_dir=Path("/tmp"), sets=sets)
    assert (config.train.epochs, config.model.nlayers, config.train.learning_rate.max) == (2**32 - 1, 2**31 - 1, 3.4e38)


@pytest.mark.parametrize("network, arch", [("ssd", "foo"), ("yolo_v3", ""), ("yolo_v3", "cspdarknet"),
                                           ("detectnet_v2", "resnet18"), ("ssd_mobilenet", "mb1-ssd")])
def test_an_architecture_the_network_does_not_build_is_refused_at_its_key(network, arch):
    extra = "pytorch_ssd: {repo: ssd}\nrunner: {kind: local}\n" if network == "ssd_mobilenet" else ""
    text = f"network: {network}\nname: a\ndataset: {{path: x}}\nmodel:\n  input_width: 320\n  arch: '{arch}'\n{extra}"
    message = _error(text)
    assert message.startswith(f"lpd.yaml:6: model.arch: {arch!r} is not an architecture {network} builds; choose one of ")
    assert message.endswith(", ".join(NETWORKS_BY_NAME[network].archs))


def test_every_architecture_a_network_lists_loads_and_its_default_is_one():
    for name, network in NETWORKS_BY_NAME.items():
        assert network.default_arch in network.archs, name
        extra = "pytorch_ssd: {repo: ssd}\nrunner: {kind: local}\n" if network.framework == "pytorch_ssd" else ""
        for arch in network.archs:
            config = parse_config(f"network: {name}\nname: a\ndataset: {{path: x}}\nmodel: {{arch: {arch}}}\n{extra}",
                                  source="a", base_dir=Path("/tmp"))
            assert config.model.arch == arch
    assert "cspdarknet_tiny" in NETWORKS_BY_NAME["yolo_v4_tiny"].archs and "cspdarknet" not in NETWORKS_BY_NAME["ssd"].archs


def test_the_examples_load():
    for path in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")):
        config = load_config(path)
        assert config.model.arch in NETWORKS_BY_NAME[config.network].archs


@pytest.mark.parametrize("network", ["ssd", "rtdetr", "ssd_mobilenet"])
@pytest.mark.parametrize("name", ["yes", "null", "123", "1.5", "2024-01-01", "1_000"])
def test_a_starter_config_keeps_a_name_yaml_would_read_as_another_type(network, name):
    config = parse_config(starter_config(network, name=name), source="init", base_dir=Path("/tmp"))
    assert config.name == name


@pytest.mark.parametrize("stage", ["prepare", "export", "nosuch"])
def test_tune_to_a_stage_without_an_map_is_refused_before_any_trial(stage):
    message = _error(f"network: ssd\nname: lpd\ndataset: {{path: x}}\ntune:\n  to: {stage}\n")
    assert message.startswith("lpd.yaml:5: tune.to: Input should be 'train', 'evaluate', ")
    assert f"got '{stage}'" in message


def test_tune_to_each_scored_stage_is_accepted():
    for stage in SCORED_STAGES:
        assert parse_config(f"network: ssd\nname: lpd\ndataset: {{path: x}}\ntune: {{to: {stage}}}\n",
                            source="lpd.yaml", base_dir=Path("/tmp")).tune.to == stage

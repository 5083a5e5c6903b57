"""The emulator's task flags against NVIDIA's definitions (no Docker needed).

TF1 images: the parsers of tao_emulator.parsers must have exactly the options that section 7 of the
TAO contract lists for TAO 5.0 (option strings, required flags, defaults, nargs), read from
../shared/tao-contract.md beside the repository. Deploy images: the parsers must equal TAO Deploy's
own, rebuilt from the nvidia-tao-deploy wheel (tests/reference/deploy_cli).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tao_emulator import catalog, main, nvidia, parsers  # noqa: E402

CONTRACT = REPO.parent / "shared" / "tao-contract.md"
GLOBAL_DESTS = {o["dest"] for o in parsers.TF1_GLOBALS}


def _section7() -> str:
    if not CONTRACT.is_file():
        pytest.skip(f"{CONTRACT} is absent: the TAO contract (shared/ beside the clone) is needed "
                    "to compare the TF1 flags with section 7")
    text = CONTRACT.read_text(encoding="utf-8")
    start = text.index("## 7.")
    end = text.index("\n## ", start + 1)
    return text[start:end]


_BULLET = re.compile(r"^- `(?P<net>\w+) (?P<task>\w+)`: (?P<options>.*)$")
_OPTION = re.compile(r"^(?P<bold>\*\*)?(?P<names>-[\w/-]+)(?P=bold)?(?P<nargs> \.\.\.)?"
                     r"(?: \((?P<default>[^)]*)\))?(?: \[\w+\])?$")


def _parse_bullets(section: str) -> dict[tuple[str, str], dict[tuple[str, ...], dict]]:
    """{(net, task): {option strings: {"required", "default" (text or None), "nargs"}}}."""
    table = {}
    for line in section.splitlines():
        bullet = _BULLET.match(line.strip())
        if not bullet:
            continue
        options = {}
        for item in bullet["options"].split(", "):
            option = _OPTION.match(item.strip())
            assert option, f"cannot read {item!r} in {line!r}"
            options[tuple(option["names"].split("/"))] = {
                "required": bool(option["bold"]), "default": option["default"],
                "nargs": bool(option["nargs"])}
        table[(bullet["net"], bullet["task"])] = options
    return table


def _tf1_bullets() -> dict:
    section = _section7()
    return _parse_bullets(section[:section.index("TAO Deploy image")])


def _default_text(value) -> str:
    """A parser default the way section 7 writes it: () empty string, ([]) empty list."""
    if value == "":
        return ""
    return str(value)


def _emulator_options(net: str, task: str, version: str = "5.0") -> dict:
    parser = parsers.build(f"{net} {task}", net, task, version, "tf")
    return {tuple(o["option_strings"]): o for o in nvidia.reference()[1].flatten(parser)
            if o["dest"] not in GLOBAL_DESTS}


def test_section_7_lists_every_tf1_task():
    listed = set(_tf1_bullets())
    expected = {(catalog.family(net), task) for net in catalog.TF_NETS
                for task in catalog.SUBCOMMANDS[net]}
    assert listed == expected


@pytest.mark.parametrize("net", catalog.TF_NETS)
def test_tf1_flags_match_section_7(net):
    bullets = _tf1_bullets()
    for task in catalog.SUBCOMMANDS[net]:
        listed = bullets[(catalog.family(net), task)]
        ours = _emulator_options(net, task)
        assert set(ours) == set(listed), f"{net} {task}"
        for names, fact in listed.items():
            option = ours[names]
            assert option["required"] == fact["required"], f"{net} {task} {names}: required"
            if fact["default"] is not None:
                assert _default_text(option["default"]) == fact["default"], f"{net} {task} {names}: default"
            assert (option["nargs"] in ("+", "*")) == fact["nargs"], f"{net} {task} {names}: nargs"


def test_tf1_entrypoint_globals():
    """The TF1 entrypoint's own flags are on every task."""
    parser = parsers.build("ssd train", "ssd", "train", "5.0", "tf")
    args = parser.parse_args(["-e", "s", "-r", "r", "--gpus", "2", "--gpu_index", "0", "1", "--use_amp",
                              "-np", "2", "--log_file", "l"])
    assert (args.gpus, args.gpu_index, args.use_amp, args.num_processes, args.log_file) == (2, [0, 1], True, 2, "l")
    assert parser.parse_args(["-e", "s", "-r", "r"]).gpu_index is None


def test_version_facts_of_the_tf1_flags():
    def dests(net, task, version):
        return {o["dest"] for o in _emulator_options(net, task, version).values()}

    for net in ("ssd", "yolo_v4", "retinanet"):
        assert {"out_image_path", "out_label_path"} <= dests(net, "inference", "3.21.11")
        assert "results_dir" not in dests(net, "inference", "3.22.05")
        assert "results_dir" in dests(net, "inference", "4.0")
        assert not {"out_image_path", "out_label_path"} & dests(net, "inference", "5.0")
    assert "out_label_path" not in dests("detectnet_v2", "inference", "3.21.11")
    assert "resume_model_weights" not in dests("retinanet", "train", "5.0")
    tlt2_prune = {tuple(o["option_strings"]): o for o in nvidia.reference()[1].flatten(
        parsers.build("tlt-prune", None, "prune", "2.0", "tf"))}
    assert not tlt2_prune[("-e", "--experiment_spec_path")]["required"]


def _deploy_table_as_the_image_reads_it() -> dict:
    _, deploy_cli = nvidia.reference()
    return json.loads(nvidia.generated_files(["5.0"], deploy=True)[nvidia.DEPLOY_FILE])


@pytest.mark.parametrize("net", catalog.TF_NETS)
def test_deploy_parsers_equal_tao_deploy(net):
    _, deploy_cli = nvidia.reference()
    table = _deploy_table_as_the_image_reads_it()
    for task in catalog.DEPLOY_SUBCOMMANDS:
        for source in (None, table):  # the host (wheel) and the image (generated JSON)
            ours = deploy_cli.flatten(parsers.build(f"{net} {task}", net, task, "5.0", "deploy", source))
            assert ours == deploy_cli.actions(net, task), f"{net} {task}"


def test_deploy_facts():
    table = _deploy_table_as_the_image_reads_it()
    gen = {o["dest"]: o for o in table["ssd"]["gen_trt_engine"]}
    assert gen["max_workspace_size"]["default"] == 2 and gen["max_workspace_size"]["type"] == "int"  # GB
    assert "gpus" not in gen and {"gpu_index", "log_file"} <= set(gen)
    assert not gen["engine_file"]["required"]
    for task in ("evaluate", "inference"):
        options = {o["dest"]: o for o in table["ssd"][task]}
        assert options["model_path"]["option_strings"] == ["-m", "--model_path"]
        assert options["results_dir"]["required"] and "key" not in options


# ---------------------------------------------------------------------------------------------
# the entrypoints: the task comes from the first argument


def _resolve(cmd, argv, version="5.0", role="tf"):
    return main.parse(cmd, argv, version, role)


def test_task_must_be_the_first_argument():
    net, sub, args, _ = _resolve("ssd", ["train", "-e", "s", "-r", "r", "--gpus", "1"])
    assert (net, sub, args.experiment_spec_file) == ("ssd", "train", "s")
    assert main.resolve("ssd", ["train", "-e", "s"], "5.0", "tf") == ("ssd", "train", ["-e", "s"], "ssd train")
    with pytest.raises(main.EntrypointCrash, match="KeyError"):
        _resolve("ssd", ["--gpus", "1", "train", "-e", "s", "-r", "r"])
    with pytest.raises(main.EntrypointCrash, match="KeyError"):
        _resolve("ssd", ["--gpu_index", "0", "gen_trt_engine", "-m", "m", "-e", "e", "-r", "r"], role="deploy")


def test_entrypoint_gpu_checks():
    with pytest.raises(main.EntrypointCrash, match="only 1 GPU"):
        _resolve("ssd", ["evaluate", "-m", "m", "-e", "e", "--gpus", "2", "--gpu_index", "0", "1"])
    with pytest.raises(main.EntrypointCrash, match="AMP"):
        _resolve("ssd", ["evaluate", "-m", "m", "-e", "e", "--use_amp"])
    with pytest.raises(main.EntrypointCrash, match="GPU indices"):
        _resolve("ssd", ["train", "-e", "s", "-r", "r", "--gpus", "2", "--gpu_index", "1"])
    assert _resolve("ssd", ["train", "-e", "s", "-r", "r", "--gpus", "2", "--gpu_index", "0", "1"])[2].gpus == 2


def test_deploy_takes_no_gpus_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        _resolve("ssd", ["gen_trt_engine", "-m", "m", "-e", "e", "-r", "r", "--gpus", "1"], role="deploy")
    assert exc.value.code == 2 and "unrecognized arguments: --gpus 1" in capsys.readouterr().err
    args = _resolve("ssd", ["gen_trt_engine", "-m", "m", "-e", "e", "-r", "r", "--gpu_index", "0"], role="deploy")[2]
    assert args.max_workspace_size == 2 and args.engine_file is None

"""Every spec and every argv tltpipe plans, for every network x toolkit x variant, judged by NVIDIA's own
definitions (judge.py). The session prints the matrix (conftest.py).

TLT 2.0 has no public source: its specs are judged by tltpipe's TLT 2.0 schema, itself held against
NVIDIA's own TLT 2.0 specs in test_tlt2_evidence.py, and its argv by the emulator's TLT 2.0 parsers.
"""

from __future__ import annotations

import pytest

from tests.conformance import judge
from tests.conformance.cases import CASES, example_configs, plan_case, plan_config
from tests.conformance.matrix import RESULTS
from tlt_pipe.config import load_config
from tlt_pipe.spec_schema import message_class
from tlt_pipe.specs import SpecError, parse_spec
from tlt_pipe.toolkits import TOOLKITS

MATRIX = RESULTS


def _tlt2_spec_problems(network: str, path: str, text: str) -> list[str]:
    try:
        parse_spec(text, "2.0", judge.spec_kind(network, path), source=path)
    except SpecError as exc:
        return [str(exc)]
    return []


def _judge(planned_stages, network: str, toolkit: str) -> list[str]:
    problems = []
    for planned in planned_stages:
        for path, text in planned.specs.items():
            if toolkit == "2.0":
                problems += _tlt2_spec_problems(network, path, text)
            else:
                problems += judge.spec_problems(toolkit, network, path, text)
        problems += judge.argv_problems(planned)
    return problems


@pytest.mark.parametrize("network, toolkit, variant", CASES, ids=["-".join(c) for c in CASES])
def test_real_tao_accepts_every_spec_and_every_command(tmp_path, network, toolkit, variant):
    planned = plan_case(tmp_path, network, toolkit, variant)
    assert planned, "the case planned no container stage"
    problems = _judge(planned, network, toolkit)
    MATRIX[(network, toolkit, variant)] = "FAIL" if problems else "pass"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("example", example_configs(), ids=lambda p: p.name)
def test_every_example_is_accepted(tmp_path, example):
    config = load_config(example)
    planned = plan_config(config, tmp_path / "run")
    problems = _judge(planned, config.network, config.toolkit)
    MATRIX[(config.network, config.toolkit, f"examples/{example.name}")] = "FAIL" if problems else "pass"
    assert not problems, "\n".join(problems)


def test_the_matrix_covers_every_network_on_every_toolkit_that_ships_it():
    from tlt_pipe.networks import NETWORKS

    covered = {(n, t) for n, t, _ in CASES}
    assert covered == {(n, t) for n in NETWORKS for t in TOOLKITS if t in NETWORKS[n].toolkits and NETWORKS[n].framework == "tao"}
    assert {v for _, _, v in CASES} == {"fp32", "int8", "kmeans", "resume", "retrain"}


@pytest.mark.parametrize("toolkit", ["3.21.11", "4.0", "5.0"])
def test_the_judge_refuses_what_tao_refuses(toolkit):
    """The suite is not blind: fields YOLO's eval_config lacks, a float where TAO 5 wants an int32,
    an unknown flag and a workspace in the wrong unit are all caught."""
    yolo = "eval_config { validation_period_during_training: 10 }\n"
    assert "has no field named" in " ".join(judge.spec_problems(toolkit, "yolo_v4", "specs/train.txt", yolo))
    dbscan = ('postprocessing_config { target_class_config { key: "a" value { clustering_config { '
              "dbscan_min_samples: 0.05 } } } }\n")
    refused = judge.spec_problems(toolkit, "detectnet_v2", "specs/train.txt", dbscan)
    assert bool(refused) == (toolkit == "5.0")


def test_the_judge_refuses_a_wrong_flag_and_a_wrong_unit(tmp_path):
    from dataclasses import replace

    planned = {p.stage: p for p in plan_case(tmp_path, "retinanet", "5.0", "int8")}
    train = planned["train"]
    wrong = replace(train, plan=replace(train.plan, argv=(*train.plan.argv, "-m", "/x.hdf5")))
    assert any("-m" in p or "unrecognized" in p for p in judge.argv_problems(wrong))
    engine = planned["engine"]
    argv = list(engine.plan.argv)
    argv[argv.index("--max_workspace_size") + 1] = "4096"
    problems = judge.argv_problems(replace(engine, plan=replace(engine.plan, argv=tuple(argv))))
    assert problems == ["engine (deploy retinanet gen_trt_engine): max_workspace_size is 4096, tltpipe means 4"]


def test_tltpipe_schema_tables_equal_nvidia_messages():
    """tltpipe's own pre-flight tables (src/tlt_pipe/schemas) are what NVIDIA's messages say, field by field."""
    from tests.reference import schema_table

    for version in ("4.0", "5.0"):
        assert schema_table.path_for(version).read_text(encoding="utf-8") == schema_table.render(version), (
            f"src/tlt_pipe/schemas/tao-{version}.json is stale: run python -m tests.reference.schema_table")
        for kind in schema_table.protos.ROOTS:
            ours = message_class(version, kind).DESCRIPTOR
            assert ours.name == schema_table.protos.descriptor(version, kind).name

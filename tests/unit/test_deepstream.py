"""The DeepStream bundle: every network's nvinfer config and the deepstream-app config, read back by GLib's own
key-file parser (the format DeepStream reads; python3-gi under the system Python), and the checker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import tlt_pipe
from tlt_pipe.cli import main
from tlt_pipe.deepstream import (Bundle, Sink, Source, app_config, check_infer_config, infer_config, output_blobs,
                                 parse_source, read_key_file)
from tlt_pipe.manifest import Manifest, StageRecord, load_manifest, save_manifest
from tlt_pipe.networks import NETWORKS as ALL_NETWORKS, get_network

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SYSTEM_PYTHON = "/usr/bin/python3"
NETWORKS = ["ssd", "dssd", "retinanet", "yolo_v3", "yolo_v4", "yolo_v4_tiny", "detectnet_v2"]

# Reads a key file with GLib and prints what gst-nvinfer / deepstream-app would get, typed.
GLIB_READER = r"""
import json, sys
import gi
gi.require_version("GLib", "2.0")
from gi.repository import GLib
text = sys.stdin.read()
kf = GLib.KeyFile()
kf.load_from_data(text, len(text.encode()), GLib.KeyFileFlags.NONE)
out = {}
for group in kf.get_groups()[0]:
    out[group] = {}
    for key in kf.get_keys(group)[0]:
        out[group][key] = kf.get_string(group, key)
typed = json.loads(sys.argv[1])
for group, key, kind in typed:
    getter = {"int": kf.get_integer, "float": kf.get_double, "ints": kf.get_integer_list,
              "floats": kf.get_double_list, "strings": kf.get_string_list}[kind]
    out.setdefault("typed", {})[f"{group}.{key}"] = getter(group, key)
print(json.dumps(out))
"""


def glib(text: str, typed: list[tuple[str, str, str]]) -> dict:
    """The key file as GLib reads it; raises when GLib refuses it or a typed read fails."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail("the system python3 with python3-gi is needed (apt-get install python3-gi gir1.2-glib-2.0)")
    done = subprocess.run([SYSTEM_PYTHON, "-c", GLIB_READER, json.dumps(typed)], input=text, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


NVINFER_TYPES = [("property", "net-scale-factor", "float"), ("property", "infer-dims", "ints"),
                 ("property", "network-mode", "int"), ("property", "num-detected-classes", "int"),
                 ("property", "cluster-mode", "int"), ("property", "model-color-format", "int"),
                 ("property", "output-blob-names", "strings"), ("class-attrs-all", "pre-cluster-threshold", "float")]


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("model, precision", [("../export/m.etlt", "int8"), ("../export/m.onnx", "fp16")])
def test_every_network_gets_a_config_gst_nvinfer_can_read(network, model, precision):
    net = get_network(network, "5.0")
    bundle = Bundle(net, model=model, labels=["lpd", "car"], input_dims=(3, 544, 960), precision=precision,
                    engine="../engine/m.engine", calibration="../export/cal.bin", threshold=0.4)
    text = infer_config(bundle)
    read = glib(text, NVINFER_TYPES)
    typed = read["typed"]
    assert typed["property.infer-dims"] == [3, 544, 960]
    assert typed["property.network-mode"] == {"int8": 1, "fp16": 2}[precision]
    assert typed["property.num-detected-classes"] == 2
    assert typed["class-attrs-all.pre-cluster-threshold"] == pytest.approx(0.4)
    blobs = typed["property.output-blob-names"]
    expected = {"ssd": ["NMS"], "dssd": ["NMS"], "retinanet": ["NMS"], "yolo_v3": ["BatchedNMS"],
                "yolo_v4": ["BatchedNMS"], "yolo_v4_tiny": ["BatchedNMS"]}.get(network)
    if network == "detectnet_v2":
        suffix = "" if model.endswith(".etlt") else ":0"
        assert blobs == [f"output_cov/Sigmoid{suffix}", f"output_bbox/BiasAdd{suffix}"]
        assert "parse-bbox-func-name" not in read["property"] and typed["property.model-color-format"] == 0
    else:
        assert blobs == expected and typed["property.model-color-format"] == 1
        parser = "NvDsInferParseCustomBatchedNMSTLT" if network.startswith("yolo") else "NvDsInferParseCustomNMSTLT"
        assert read["property"]["parse-bbox-func-name"] == parser and read["property"]["custom-lib-path"]
    if model.endswith(".onnx"):
        assert read["property"]["onnx-file"] == model and "uff-input-blob-name" not in read["property"]
    else:  # no key asked for: the engine, and the .etlt lines commented out
        assert "tlt-model-key" not in read["property"] and read["property"]["model-engine-file"] == "../engine/m.engine"
        assert read["property"]["int8-calib-file"] == "../export/cal.bin"
    assert check_infer_config(read_key_file(text)) == []


def test_the_key_is_written_only_when_asked():
    net = get_network("yolo_v4", "3.21.11")
    bundle = Bundle(net, model="../export/yolov4.etlt", labels=["lpd"], input_dims=(3, 320, 320), key="k3y")
    read = glib(infer_config(bundle), [])
    assert read["property"]["tlt-model-key"] == "k3y" and read["property"]["tlt-encoded-model"] == "../export/yolov4.etlt"
    assert read["property"]["uff-input-blob-name"] == "Input"


@pytest.mark.parametrize("source, sink", [(Source(), Sink()), (Source("camera", camera=1), Sink("display")),
                                          (Source("rtsp", uri="rtsp://cam/1"), Sink("rtsp", port=8555)),
                                          (Source(), Sink("fake"))])
def test_the_app_config_reads_as_deepstream_app_reads_it(source, sink):
    typed = [("source0", "type", "int"), ("sink0", "type", "int"), ("streammux", "live-source", "int"),
             ("osd", "text-color", "floats"), ("tracker", "enable", "int"), ("primary-gie", "enable", "int")]
    read = glib(app_config(source, sink, tracker=sink.kind != "fake"), typed)["typed"]
    assert read["source0.type"] == {"file": 3, "camera": 1, "rtsp": 4}[source.kind]
    assert read["sink0.type"] == {"file": 3, "display": 2, "rtsp": 4, "fake": 1}[sink.kind]
    assert read["streammux.live-source"] == int(source.kind != "file") and read["osd.text-color"] == [1, 1, 1, 1]
    assert read["tracker.enable"] == int(sink.kind != "fake") and read["primary-gie.enable"] == 1


def test_the_checker_names_what_gst_nvinfer_would_refuse():
    good = read_key_file(infer_config(Bundle(get_network("ssd", "5.0"), model="../export/ssd.onnx", labels=["a"],
                                             input_dims=(3, 300, 300))))
    assert check_infer_config(good) == []
    broken = {g: dict(v) for g, v in good.items()}
    broken["property"]["infer-dims"] = "3;300"
    broken["property"]["network-mode"] = "3"
    del broken["property"]["onnx-file"]
    broken["class-attrs-4"] = {"pre-cluster-threshold": "0.5"}
    problems = "\n".join(check_infer_config(broken))
    assert "infer-dims=3;300: needs 3 integers" in problems and "network-mode=3: not one of 0, 1, 2" in problems
    assert "no model" in problems and "[class-attrs-4]: not a class of the 1 detected" in problems
    assert check_infer_config({}) == ["no [property] group"]
    assert output_blobs(get_network("detectnet_v2", "5.0"), etlt=False) == ["output_cov/Sigmoid:0", "output_bbox/BiasAdd:0"]


def _exported_run(example: str, run_dir):
    """A run of the example that has exported and built its engine (the files as tltpipe records them)."""
    config = tlt_pipe.load_config(EXAMPLES / example)
    run_dir.mkdir()
    ext = "onnx" if config.toolkit.startswith("5") else "etlt"
    model = f"export/{get_network(config.network, config.toolkit).checkpoint_prefix}.{ext}"
    stages = {"prepare": StageRecord(status="succeeded", artifacts={"classes": ["lpd"]}),
              "export": StageRecord(status="succeeded", artifacts={"model": model}),
              "engine": StageRecord(status="succeeded", artifacts={"engine": "engine/model.engine"})}
    save_manifest(run_dir, Manifest(tltpipe="0", name=config.name, network=config.network, toolkit=config.toolkit,
                                    stages=stages))
    (run_dir / "config.yaml").write_text((EXAMPLES / example).read_text().replace("data/", str(EXAMPLES / "data") + "/"))
    return config


@pytest.mark.parametrize("example", [p.name for p in sorted(EXAMPLES.glob("*.yaml")) if ALL_NETWORKS[
    yaml.safe_load(p.read_text(encoding="utf-8"))["network"]].framework == "tao"])  # pytorch-ssd has no bundle
def test_the_bundle_of_every_example(example, tmp_path):
    run_dir = tmp_path / "run"
    config = _exported_run(example, run_dir)
    done = CliRunner().invoke(main, ["deepstream", str(run_dir), "--sink", "fake"])
    assert done.exit_code == 0, done.output
    text = (run_dir / "deepstream" / "config_infer_primary.txt").read_text(encoding="utf-8")
    read = glib(text, NVINFER_TYPES)
    assert read["typed"]["property.network-mode"] == {"fp32": 0, "int8": 1, "fp16": 2}[config.engine.data_type]
    assert read["typed"]["property.infer-dims"] == [3, config.model.input_height, config.model.input_width]
    assert read["property"]["model-engine-file"] == "../engine/model.engine"
    labels = (run_dir / "deepstream" / "labels.txt").read_text(encoding="utf-8").split()
    assert labels[-1] == "lpd" and read["typed"]["property.num-detected-classes"] == len(labels)
    glib((run_dir / "deepstream" / "deepstream_app.txt").read_text(encoding="utf-8"), [("sink0", "type", "int")])


def test_a_run_without_an_export_is_named(tmp_path):
    save_manifest(tmp_path, Manifest(tltpipe="0", name="x", network="ssd", toolkit="5.0"))
    (tmp_path / "config.yaml").write_text("network: ssd\nname: x\ndataset: {path: d}\n")
    done = CliRunner().invoke(main, ["deepstream", str(tmp_path)])
    assert done.exit_code == 2 and "export has not succeeded there" in done.output


@pytest.mark.parametrize("options, message", [
    (["--parser-lib", "/lib.so\nnetwork-mode=2"], "a control character"),
    (["--sink", "file:out.mp4\n[evil]"], "a control character"),
    (["--sink", "rtsp:70000"], "an RTSP port is 1 to 65535"),
    (["--source", "rtsp://cam\n[x]"], "a control character"),
    (["--source", "camera:256"], "camera:N names /dev/videoN, N from 0 to 255"),
    (["--source", "camera:\u00b2"], "camera:N names /dev/videoN"),  # a digit to str.isdigit, not to int()
    (["--source", "camera:"], "camera:N names /dev/videoN"),  # once camera 0, unasked
    (["--source", "rtsp://"], "'rtsp://': no host; write rtsp://HOST[:PORT]/PATH"),
    (["--source", "rtsp://cam:99999/x"], "Port out of range"),
    (["--source", "rtsp://ca m/x"], "a URI holds no spaces"),
    (["--source", "udp://239.0.0.1:5000"], "DeepStream's sources read a file, http(s)://, rtsp:// or camera:N, not udp"),
    (["--sink", "rtsp:"], "give file:PATH, display, rtsp:PORT"),  # once port 8554, unasked
    (["--sink", "rtsp:\uff18\uff15\uff15\uff14"], "give file:PATH, display, rtsp:PORT"),  # full-width digits
    (["--sink", "file:"], "give the file to write, e.g. file:deepstream_out.mp4"),
    (["--source", "file:"], "give the video file"),  # once file:///<cwd>, a folder
    (["--source", "file://clip.mp4"], "a file URI names an absolute path"),  # once clip.mp4 taken as the host
    (["--source", "file:///"], "a file URI names an absolute path"),
    (["--source", "rtsp://cam:0/x"], "a port is 1 to 65535"),
])
def test_an_option_that_would_break_a_key_file_is_refused(tmp_path, options, message):
    run_dir = tmp_path / "run"
    _exported_run("lpd.yaml", run_dir)
    done = CliRunner().invoke(main, ["deepstream", str(run_dir), *options])
    assert done.exit_code == 2 and message in done.output and not (run_dir / "deepstream").exists()


def test_a_file_where_the_bundle_goes_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    _exported_run("lpd.yaml", run_dir)
    (run_dir / "deepstream").write_text("a file")
    done = CliRunner().invoke(main, ["deepstream", str(run_dir), "--sink", "fake"])
    assert done.exit_code == 2 and "deepstream: is a file; the bundle is a folder there" in done.output


@pytest.mark.parametrize("stage, artifacts, message", [
    ("export", {}, "stages.export.artifacts.model: missing; run export again"),  # once a KeyError traceback
    ("export", {"model": "../../etc/passwd"}, "stages.export.artifacts.model: '../../etc/passwd' is not a path inside"),
    ("engine", {"engine": "/etc/shadow"}, "stages.engine.artifacts.engine: '/etc/shadow' is not a path inside"),
    ("export", {"model": "export/m.onnx", "labels": "../x.txt"}, "stages.export.artifacts.labels: '../x.txt'"),
])
def test_a_manifest_whose_artifacts_are_missing_or_outside_the_run_is_named(tmp_path, stage, artifacts, message):
    run_dir = tmp_path / "run"
    _exported_run("lpd.yaml", run_dir)
    manifest = load_manifest(run_dir)
    manifest.stages[stage].artifacts = artifacts
    save_manifest(run_dir, manifest)
    done = CliRunner().invoke(main, ["deepstream", str(run_dir), "--sink", "fake"])
    assert done.exit_code == 2, done.output
    assert done.stderr.strip().startswith(f"tltpipe: error: {run_dir / 'manifest.json'}: {message}")
    assert not (run_dir / "deepstream").exists()


@pytest.mark.parametrize("text, kind, uri", [
    ("http://media.local/lpd.mp4", "file", "http://media.local/lpd.mp4"),  # once file:///<cwd>/http:/media...
    ("https://media.local/lpd.mp4", "file", "https://media.local/lpd.mp4"),
    ("rtsp://cam.local:554/stream1", "rtsp", "rtsp://cam.local:554/stream1"),
    ("file:///videos/a.mp4", "file", "file:///videos/a.mp4"),
])
def test_sources_given_as_uris_are_kept_as_deepstream_opens_them(text, kind, uri):
    source = parse_source(text)
    assert (source.kind, source.uri) == (kind, uri)


def test_sources_given_as_paths_become_file_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_source("my video.mp4").uri == (tmp_path / "my video.mp4").as_uri()
    assert parse_source("file:clip.mp4").uri == (tmp_path / "clip.mp4").as_uri()  # as the sinks write file:PATH


def test_the_bundle_keeps_the_runs_own_source_and_sink_unless_an_option_says_else(tmp_path):
    run_dir = tmp_path / "run"
    _exported_run("lpd.yaml", run_dir)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "deepstream: {source: 'rtsp://cam.local/1', "
                      "sink: 'rtsp:8555', tracker: false}\n", encoding="utf-8")
    done = CliRunner().invoke(main, ["deepstream", str(run_dir)])  # once: the sample mp4 and a file sink
    assert done.exit_code == 0, done.output
    app = glib((run_dir / "deepstream" / "deepstream_app.txt").read_text(encoding="utf-8"),
               [("source0", "type", "int"), ("sink0", "type", "int"), ("sink0", "rtsp-port", "int")])
    assert app["source0"]["uri"] == "rtsp://cam.local/1" and app["typed"]["source0.type"] == 4
    assert app["typed"]["sink0.type"] == 4 and app["typed"]["sink0.rtsp-port"] == 8555
    assert app["tracker"]["enable"] == "0"
    done = CliRunner().invoke(main, ["deepstream", str(run_dir), "--sink", "fake"])
    app = glib((run_dir / "deepstream" / "deepstream_app.txt").read_text(encoding="utf-8"), [("sink0", "type", "int")])
    assert done.exit_code == 0 and app["typed"]["sink0.type"] == 1 and app["source0"]["uri"] == "rtsp://cam.local/1"
    bad = CliRunner().invoke(main, ["deepstream", str(run_dir), "--source", "udp://x"])  # one line, not click's usage
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines() == [
        "tltpipe: error: --source: 'udp://x': DeepStream's sources read a file, http(s)://, rtsp:// or camera:N, not udp://"]


def test_values_with_a_backslash_or_leading_blank_read_back_as_written():
    app = app_config(Source(), Sink("file", path="out\\new .mp4"))  # once GLib read it as a line break
    assert glib(app, [])["sink0"]["output-file"] == "out\\new .mp4"
    app = app_config(Source(), Sink("file", path=" lead.mp4"))
    assert glib(app, [])["sink0"]["output-file"] == " lead.mp4"
    net = get_network("yolo_v4", "3.21.11")
    bundle = Bundle(net, model="../export/yolov4.etlt", labels=["lpd"], input_dims=(3, 320, 320), key="k\\3y")
    assert glib(infer_config(bundle), [])["property"]["tlt-model-key"] == "k\\3y"

# tltpipe: developer and demo entry points.
PYTHON ?= python3
EMULATOR_TF ?= tltpipe-emulator:tf-5.0
EMULATOR_DEPLOY ?= tltpipe-emulator:deploy-5.0
# No GPU here, and an engine without CAP_SYS_RESOURCE cannot raise memlock to TAO's "unlimited".
DEMO_SETS = --set runner.gpus=0 --set runner.image=$(EMULATOR_TF) --set runner.deploy_image=$(EMULATOR_DEPLOY) \
	--set 'docker.ulimits={memlock: 8388608, stack: 67108864}'

.PHONY: install docker emulator glib sample demo test test-slurm test-pytorch pytorch slurm unit bench clean

install:
	$(PYTHON) -m pip install -q -e '.[test]'

docker:
	./scripts/ensure-docker.sh

emulator: docker install
	$(PYTHON) tests/emulator/build.py

sample: install
	$(PYTHON) examples/make_sample.py

# The main job on the bundled sample. Without the real TAO images (no GPU, no nvcr.io) it runs
# against the emulator images: same commands, files and logs, simulated metrics.
demo:
	@echo "*** tltpipe demo: the containers are the tltpipe TAO EMULATOR (no GPU); every metric is SIMULATED. ***"
	@echo "*** On a GPU machine with the real images: tltpipe run ssd --config examples/lpd.yaml             ***"
	@$(MAKE) --no-print-directory emulator sample
	tltpipe run ssd --config examples/lpd.yaml $(DEMO_SETS)
	tltpipe show runs/lpd

# GLib's own key-file parser under the system Python: the DeepStream bundle tests read the files with it.
glib:
	@/usr/bin/python3 -c "import gi" >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq python3-gi gir1.2-glib-2.0 >/dev/null)

test: emulator glib
	$(PYTHON) -m pytest -q -p no:cacheprovider

# runner.kind: slurm against a real one-node cluster on this machine (installs slurm-wlm and munge; root).
slurm:
	./scripts/slurm-cluster.sh

test-slurm: emulator slurm
	$(PYTHON) -m pytest -q -p no:cacheprovider -m slurm tests/integration

# ssd_mobilenet trained for real on the CPU through tests/pytorch_ssd (PyTorch from the package index, ~5 GB).
pytorch: install
	@$(PYTHON) -c "import torch, torchvision, onnx, onnxruntime" >/dev/null 2>&1 || \
		$(PYTHON) -m pip install -q torch torchvision onnx onnxruntime

test-pytorch: pytorch
	$(PYTHON) -m pytest -q -p no:cacheprovider -m pytorch tests/integration

unit: install
	$(PYTHON) -m pytest -q tests/unit

bench: install
	$(PYTHON) bench/bench_convert.py --quick
	$(PYTHON) bench/bench_anchors.py
	$(PYTHON) bench/bench_startup.py
	$(PYTHON) bench/bench_skip.py

clean:
	rm -rf runs examples/data .cache build *.egg-info

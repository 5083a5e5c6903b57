"""How a starting model reaches `<net> train`, and how an interrupted training run continues.

Each network row names one of these; the train stage asks it and never tests a network:
- BY_FLAG (SSD, DSSD): `-m MODEL`; resume is `-m CHECKPOINT --initial_epoch N+1`.
- IN_SPEC (RetinaNet, YOLO): training_config.pretrain_model_path | pruned_model_path; resume is
  resume_model_path in a spec of its own (specs/<stage>.resume.txt) naming the checkpoint file as TAO
  wrote it (TAO reads the start epoch from that name).
- RESULTS_DIR (DetectNet_v2): model_config.pretrained_model_file (the pruned model with load_graph
  for retrain); resuming is re-running in the same results folder, which continues after its newest
  model.epoch-<N>.ckzip; it keeps only its final model, weights/<name>.<ext>.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelPassing:
    kind: str  # "flag" | "spec" | "results_dir"
    start_flag: bool = False  # the start model goes on the command line (-m)
    start_fields: tuple[str, str] | None = None  # (train, retrain) spec fields of the start model
    resume_flags: bool = False  # resume with -m CHECKPOINT --initial_epoch N+1
    resume_spec: bool = False  # resume through a spec naming resume_model_path
    load_graph_on_retrain: bool = False  # DetectNet_v2: the pruned model's graph is loaded as is
    final_model_only: bool = False  # no per-epoch weights/: checkpoints are <results>/model.epoch-N.ckzip
    checkpoint_ext: str | None = None  # the resumable checkpoints' extension when it is not the toolkit's

    def start_args(self, model: str | None) -> list[str]:
        """What train's command line carries of the start model."""
        return ["-m", model] if model and self.start_flag else []

    def start_in_spec(self, stage: str, model: str | None) -> dict:
        """The experiment spec's view of the start model: {"field", "path"[, "load_graph"]} or {}."""
        if model is None or self.start_fields is None:
            return {}
        start = {"field": self.start_fields[0 if stage == "train" else 1], "path": model}
        if self.load_graph_on_retrain:
            start["load_graph"] = stage == "retrain"
        return start

    def resume_args(self, checkpoint: str, epoch: int) -> list[str]:
        """What train's command line carries to continue after `epoch` from `checkpoint`."""
        return ["-m", checkpoint, "--initial_epoch", str(epoch + 1)] if self.resume_flags else []

    def checkpoints(self, results: str, toolkit_ext: str) -> tuple[str, str]:
        """(run-relative folder, extension) of the checkpoints a training run can resume from."""
        if self.final_model_only:
            return results, self.checkpoint_ext or toolkit_ext
        return f"{results}/weights", toolkit_ext


BY_FLAG = ModelPassing("flag", start_flag=True, resume_flags=True)
IN_SPEC = ModelPassing("spec", start_fields=("pretrain_model_path", "pruned_model_path"), resume_spec=True)
RESULTS_DIR = ModelPassing("results_dir", start_fields=("pretrained_model_file", "pretrained_model_file"),
                           load_graph_on_retrain=True, final_model_only=True, checkpoint_ext="ckzip")

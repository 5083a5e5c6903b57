"""The training loop shared by every network: epochs, console, checkpoints, CSV, status.json,
and the fault-injection switches."""

from __future__ import annotations

import os

from . import common, metrics, modelio, runtime
from .runtime import TaskFailed, say


class Plan:
    """Everything the loop needs; filled in by the network's train task."""

    def __init__(self, **kw):
        self.net = kw["net"]
        self.title = kw["title"]
        self.arch = kw["arch"]
        self.nlayers = kw["nlayers"]
        self.classes = kw["classes"]
        self.inp = kw["inp"]
        self.start_epoch = kw["start_epoch"]
        self.num_epochs = kw["num_epochs"]
        self.skill = kw["skill"]
        self.pretrained = kw["pretrained"]
        self.pruned_ratio = kw["pruned_ratio"]
        self.qat = kw["qat"]
        self.parent_fp = kw["parent_fp"]
        self.spec_fp = kw["spec_fp"]
        self.n_train = kw["n_train"]
        self.val = kw["val"]
        self.batch = kw["batch"]
        self.gpus = kw["gpus"]
        self.schedule = kw["schedule"]  # (name, message)
        self.val_period = kw["val_period"]
        self.validate_last = kw.get("validate_last", False)  # also validate at the last epoch
        self.first_val_epoch = kw.get("first_val_epoch", 1)
        self.ckpt_interval = max(1, kw["ckpt_interval"])
        self.checkpoint_path = kw["checkpoint_path"]  # epoch -> path or None
        self.save_checkpoint = kw["save_checkpoint"]  # (path, meta, epoch) -> None
        self.csv_path = kw.get("csv_path")
        self.csv_append = kw.get("csv_append", False)  # RetinaNet appends; the others overwrite
        self.style = kw.get("style", "keras")  # or "detectnet"
        self.version = kw["version"]


def _row_csv(path, header, row):
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(",".join(common.fmt(row.get(k, float("nan"))) for k in header) + "\n")


def run(plan: Plan, status: runtime.StatusLog) -> dict:
    """Train; returns the metadata of the final model state."""
    classes = plan.classes
    header = ["epoch"] + sorted([f"AP_{c}" for c in classes] + ["loss", "lr", "mAP", "validation_loss"])
    if plan.csv_path:
        common.makedirs(os.path.dirname(plan.csv_path))
        if not (plan.csv_append and os.path.isfile(plan.csv_path)):
            with open(plan.csv_path, "w", encoding="utf-8") as fh:
                fh.write(",".join(header) + "\n")
    val_fp = common.data_fp(plan.val) if plan.val else None
    steps = common.steps_per_epoch(plan.n_train, plan.batch, plan.gpus)

    fail_at = runtime.env_int("TAO_EMU_FAIL_AT_EPOCH")
    exit_code = runtime.env_int("TAO_EMU_EXIT_CODE")
    exit_at = runtime.env_int("TAO_EMU_EXIT_AT_EPOCH",
                              plan.start_epoch + (plan.num_epochs - plan.start_epoch) // 2)
    hang = runtime.env_flag("TAO_EMU_HANG")
    truncate = runtime.env_int("TAO_EMU_TRUNCATE_CHECKPOINT")
    epoch_sleep = runtime.epoch_seconds()
    cap = metrics.skill_cap({"pretrained": plan.pretrained, "pruned_ratio": plan.pruned_ratio,
                             "qat": plan.qat})

    skill, fp = plan.skill, plan.parent_fp
    quality = metrics.hyper_quality(plan.net, getattr(plan.schedule[1], "max_learning_rate", None),
                                   plan.batch)
    count = metrics.params(plan.nlayers, plan.pruned_ratio)
    say(f"Total params: {count:,}")  # the end of Keras's model summary
    say(f"Trainable params: {count - count // 200:,}")
    say(f"Non-trainable params: {count // 200:,}")
    meta = None
    if plan.start_epoch > plan.num_epochs:
        say(f"Initial epoch {plan.start_epoch} is past num_epochs {plan.num_epochs}: nothing to train.")
    for epoch in range(plan.start_epoch, plan.num_epochs + 1):
        say(f"Epoch {epoch}/{plan.num_epochs}")
        if hang:
            runtime.hang_forever()
        if exit_code is not None and epoch == exit_at:
            runtime.hard_exit(exit_code)
        if fail_at is not None and epoch == fail_at:
            raise TaskFailed(f"RuntimeError: injected failure at epoch {epoch} "
                             "(TAO_EMU_FAIL_AT_EPOCH)")
        skill = metrics.train_step(skill, cap, plan.n_train, fp, epoch, quality)
        fp = modelio.fingerprint(fp, plan.spec_fp, epoch)
        runtime.sleep(epoch_sleep)
        loss = metrics.loss(skill, fp, epoch)
        lr = float(f"{metrics.learning_rate(plan.schedule[0], plan.schedule[1], epoch, plan.num_epochs):.6g}")
        seconds = common.keras_progress(steps, loss, fp, epoch)
        if plan.style == "detectnet":
            say(f"INFO:tensorflow:epoch = {float(epoch)}, learning_rate = {lr:.6g}, "
                f"loss = {loss:.5f}, step = {epoch * steps}")
        row = {"epoch": epoch, "loss": loss, "lr": lr}
        validate = bool(plan.val) and epoch >= plan.first_val_epoch
        if validate:
            if plan.val_period == 0:
                raise TaskFailed("ZeroDivisionError: integer division or modulo by zero "
                                 "(validation_period_during_training is 0)")
            validate = epoch % plan.val_period == 0 or (plan.validate_last and epoch == plan.num_epochs)
        kpi = None
        if validate:
            aps = metrics.class_aps(skill, fp, classes, val_fp)
            vloss = metrics.validation_loss(skill, fp, epoch)
            if plan.style == "detectnet":
                say(f"Validation cost: {vloss / 100.0:.6f}")
                mean = common.detectnet_ap_table(aps)
            else:
                say("Start to calculate AP for each class")
                mean = common.ap_block(aps)
                say(f"Validation loss: {vloss}")
            row.update({f"AP_{c}": v for c, v in aps.items()})
            row["mAP"] = mean if plan.style != "detectnet" else round(mean / 100.0, 6)
            row["validation_loss"] = vloss
            kpi = {"validation loss": vloss, "mean average precision": row["mAP"]}
        meta = common.model_meta(plan.net, plan.arch, plan.nlayers, classes, plan.inp,
                                 kind="checkpoint", epoch=epoch, skill=skill,
                                 pretrained=plan.pretrained, pruned_ratio=plan.pruned_ratio,
                                 qat=plan.qat, fp=fp, version=plan.version)
        path = plan.checkpoint_path(epoch)
        if path:
            if truncate is not None and epoch == truncate:
                common.makedirs(os.path.dirname(path))
                open(path, "wb").close()
                say(f"(emulator: TAO_EMU_TRUNCATE_CHECKPOINT={epoch}, wrote an empty checkpoint)")
            else:
                plan.save_checkpoint(path, meta, epoch)
            say(f"Epoch {epoch:05d}: saving model to {path}")
        if plan.csv_path:
            _row_csv(plan.csv_path, header, row)
        graphical = {"loss": loss, "learning_rate": lr}
        if kpi:
            graphical.update({"validation_loss": kpi["validation loss"],
                              "mean average precision": kpi["mean average precision"]})
        extra = {"epoch": epoch, "max_epoch": plan.num_epochs,
                 "time_per_epoch": common.td(seconds),
                 "eta": common.td(seconds * (plan.num_epochs - epoch)),
                 "graphical": graphical}
        if kpi:
            extra["kpi"] = kpi
        status.write("RUNNING", "Training loop in progress", **extra)
    if meta is None:
        meta = common.model_meta(plan.net, plan.arch, plan.nlayers, classes, plan.inp,
                                 kind="checkpoint", epoch=plan.start_epoch - 1, skill=skill,
                                 pretrained=plan.pretrained, pruned_ratio=plan.pruned_ratio,
                                 qat=plan.qat, fp=fp, version=plan.version)
    return meta

"""(network, subcommand) -> task function."""

from __future__ import annotations

from . import datasets, det, detectnet, engines


def lookup(ctx):
    sub, net = ctx.sub, ctx.net
    if sub == "converter":
        return engines.converter
    if sub == "dataset_convert":
        return datasets.dataset_convert
    if sub == "kmeans":
        return datasets.kmeans
    if sub == "gen_trt_engine":
        return engines.gen_trt_engine
    if sub == "prune":
        return det.prune
    if sub == "export":
        return det.export
    if net == "detectnet_v2":
        return {
            "train": detectnet.train,
            "evaluate": detectnet.evaluate,
            "inference": detectnet.inference,
            "calibration_tensorfile": detectnet.calibration_tensorfile,
        }[sub]
    return {"train": det.train, "evaluate": det.evaluate, "inference": det.inference}[sub]

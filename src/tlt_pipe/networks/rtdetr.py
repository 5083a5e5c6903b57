"""RT-DETR: TAO's PyTorch detector (`rtdetr` in the toolkit's PyTorch image), on COCO JSON datasets, with
YAML experiment specs. Its stages are in stages/tao_pyt.py; the TF1 fields of the row below are unused
(no protobuf spec, no pruning, no .etlt)."""

from __future__ import annotations

from tlt_pipe.networks import Network, Nvinfer
from tlt_pipe.networks.passing import IN_SPEC

# model.backbone's valid options in NVIDIA's RT-DETR experiment config (nvidia-tao-core 7.3.0).
BACKBONES = (
    "resnet_18", "resnet_34", "resnet_50", "resnet_101",
    "convnext_tiny", "convnext_small", "convnext_base", "convnext_large", "convnext_xlarge",
    "fan_tiny", "fan_small", "fan_base", "fan_large",
    "efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "efficientvit_b3",
    "efficientvit_l0", "efficientvit_l1", "efficientvit_l2", "efficientvit_l3",
)
PYT_TOOLKITS = frozenset({"6.26.3"})  # the toolkits with a PyTorch image that runs it


def dataset_section(val: dict[str, str], width: int, height: int) -> dict:
    """One validation source, category ids as written (no COCO remapping), the input size as [h, w]."""
    return {"val_data_sources": val, "remap_mscoco_category": False,
            "augmentation": {"train_spatial_size": [height, width], "eval_spatial_size": [height, width]}}

def detr_network(name: str, archs: tuple[str, ...], default_input: tuple[int, int], spec_dataset) -> Network:
    """A TAO PyTorch DETR-family row: COCO data, YAML specs, the toolkit's PyTorch image."""
    return Network(
        name=name, family=name, checkpoint_prefix="model", output_nodes="pred_logits,pred_boxes",
        input_name="inputs", model_passing=IN_SPEC, toolkits=PYT_TOOLKITS, archs=archs,
        default_arch="resnet_50", default_nlayers=None, default_input=default_input, input_multiple=32,
        framework="tao_pyt", dataset_layout="coco", default_toolkit="6.26.3", ngc_model="",  # init names no NGC model
        nvinfer=Nvinfer(color_format=0, scale=1 / 255.0), spec_dataset=spec_dataset,
    )


NETWORKS = (detr_network("rtdetr", BACKBONES, (640, 640), dataset_section),)

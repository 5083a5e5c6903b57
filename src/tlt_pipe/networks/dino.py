"""DINO: TAO's PyTorch DETR detector (`dino` in the toolkit's PyTorch image), on COCO JSON datasets, with YAML
experiment specs, in the same stages as RT-DETR (stages/tao_pyt.py)."""

from __future__ import annotations

from tlt_pipe.networks.rtdetr import detr_network

# model.backbone's valid options in NVIDIA's DINO experiment config (nvidia-tao-core 7.3.0).
BACKBONES = (
    "resnet_34", "resnet_50",
    "fan_tiny", "fan_small", "fan_base", "fan_large",
    "gc_vit_xxtiny", "gc_vit_xtiny", "gc_vit_tiny", "gc_vit_small", "gc_vit_base", "gc_vit_large", "gc_vit_large_384",
    "vit_large_nvdinov2", "vit_large_dinov2",
    "swin_tiny_224_1k", "swin_base_224_22k", "swin_base_384_22k", "swin_large_224_22k", "swin_large_384_22k",
    "efficientvit_b0", "efficientvit_b1", "efficientvit_b2", "efficientvit_b3",
)


def dataset_section(val: dict[str, str], width: int, height: int) -> dict:
    """DINO takes a list of validation sources; its input size comes from its augmentation's scales."""
    return {"val_data_sources": [val]}


NETWORKS = (detr_network("dino", BACKBONES, (960, 544), dataset_section),)

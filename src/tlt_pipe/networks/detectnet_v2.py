"""DetectNet_v2: the pretrained model is a spec field and training resumes by itself.

Re-running train with the same results directory continues after the newest
model.epoch-<N>.ckzip; the final model is weights/<model_name>.<ext>. Images must already
have the training resolution (multiples of 16).
"""

from __future__ import annotations

from tlt_pipe.networks import ALL_TOOLKITS, BACKBONES, Network, Nvinfer, checks
from tlt_pipe.networks.passing import RESULTS_DIR

SECTIONS = ("dataset_config", "augmentation_config", "postprocessing_config", "model_config",
            "evaluation_config", "cost_function_config", "training_config", "bbox_rasterizer_config")


def check_detectnet_spec(message) -> list[str]:
    problems = checks.required(message, SECTIONS) + checks.schedule(message.training_config)
    pre = message.augmentation_config.preprocessing
    for name in ("output_image_width", "output_image_height"):
        value = getattr(pre, name)
        if value <= 0 or value % 16:
            problems.append(f"augmentation_config.preprocessing.{name}: {value} is not a positive multiple of 16")
    classes = set(checks.entries(message.dataset_config.target_class_mapping).values())
    if not classes:
        problems.append("dataset_config.target_class_mapping: no class is mapped")
    listed = {
        "cost_function_config.target_classes": {c.name for c in message.cost_function_config.target_classes},
        "postprocessing_config.target_class_config": set(checks.entries(message.postprocessing_config.target_class_config)),
        "bbox_rasterizer_config.target_class_config": set(checks.entries(message.bbox_rasterizer_config.target_class_config)),
    }
    for field, names in listed.items():
        missing = sorted(classes - names)
        if missing:
            problems.append(f"{field}: no entry for class(es) {', '.join(missing)}")
    if message.evaluation_config.validation_period_during_training <= 0:
        problems.append("evaluation_config.validation_period_during_training: must be at least 1")
    return problems


NETWORKS = (
    Network(
        name="detectnet_v2", family="detectnet_v2", checkpoint_prefix="model",
        output_nodes="output_cov/Sigmoid,output_bbox/BiasAdd", input_name="input_1", model_passing=RESULTS_DIR,
        toolkits=ALL_TOOLKITS, archs=BACKBONES, check_spec=check_detectnet_spec, default_input=(960, 544),
        input_multiple=16,
        dynamic_shape=False, tlt2_export_spec=False, own_image=True, always_resized=True, int8_tensorfile=True,
        inference_spec="detectnet_v2/inference.txt.j2", ngc_model="nvidia/tao/pretrained_detectnet_v2",
        # gst-nvinfer's own grid parser; RGB scaled to [0, 1]; NMS over the grid's boxes.
        nvinfer=Nvinfer(color_format=0, scale=1 / 255, cluster_mode=2),
    ),
)

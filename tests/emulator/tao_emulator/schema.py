"""TLT 2.0's SSD, DSSD, RetinaNet and YOLOv3 spec layouts, as plain data.

TLT 2.0 has no published source, so these are written from tao-contract.md and NVIDIA's TLT 2.0
sample specs: DetectNet_v2's dataset and augmentation messages (no validation_data_sources,
include_difficult_in_training, output_width or image_mean), YOLOv3 under `yolo_config` (no
force_relu), and an eval_config that still has validation_period_during_training. Every other spec
(TAO 3.x-5.x, and TLT 2.0's DetectNet_v2 and dataset_convert specs) is read with NVIDIA's own
messages (nvidia.py), TLT 2.0's with the few additions in TLT2_ADDITIONS.

Each schema is one proto3 file: a package, a root message and its messages. A message is a list of
field declarations ``"[repeated|oneof:<group>] <type> <name>"`` or ``"map<K,V> <name>"``; types are
proto scalar names, message names of the same schema, or enum names ``Message.Enum`` declared in
ENUMS. Field numbers are assigned in declaration order (text format does not see them).
"""

from __future__ import annotations

ENUMS = {
    "RegularizerConfig.TYPE": ("NO_REG", "L1", "L2"),
    "EvalConfig.AP_MODE": ("SAMPLE", "INTEGRATE"),
}

_TRAINING = {
    "SoftStartAnnealingSchedule": [
        "float min_learning_rate", "float max_learning_rate", "float soft_start", "float annealing",
    ],
    "SoftStartCosineAnnealingSchedule": [
        "float max_learning_rate", "float soft_start", "float min_learning_rate",
    ],
    "LearningRateConfig": [
        "oneof:learning_rate SoftStartAnnealingSchedule soft_start_annealing_schedule",
        "oneof:learning_rate SoftStartCosineAnnealingSchedule soft_start_cosine_annealing_schedule",
    ],
    "RegularizerConfig": ["RegularizerConfig.TYPE type", "float weight"],
    "AdamOptimizerConfig": ["float epsilon", "float beta1", "float beta2", "bool amsgrad"],
    "SgdOptimizerConfig": ["float momentum", "bool nesterov"],
    "RmspropOptimizerConfig": ["float rho", "float momentum", "float epsilon", "bool centered"],
    "OptimizerConfig": [
        "oneof:optim AdamOptimizerConfig adam",
        "oneof:optim SgdOptimizerConfig sgd",
        "oneof:optim RmspropOptimizerConfig rmsprop",
    ],
    "VisualizerConfig": ["bool enabled", "uint32 num_images"],
    "EarlyStoppingConfig": ["string monitor", "float min_delta", "uint32 patience"],
    "TrainingConfig": [
        "uint32 batch_size_per_gpu",
        "uint32 num_epochs",
        "bool enable_qat",
        "LearningRateConfig learning_rate",
        "RegularizerConfig regularizer",
        "OptimizerConfig optimizer",
        "uint32 checkpoint_interval",
        "uint32 max_queue_size",
        "uint32 n_workers",
        "bool use_multiprocessing",
        "oneof:load_model string pretrain_model_path",
        "oneof:load_model string resume_model_path",
        "oneof:load_model string pruned_model_path",
        "VisualizerConfig visualizer",
        "EarlyStoppingConfig early_stopping",
        "bool model_ema",
    ],
    "EvalConfig": [
        "EvalConfig.AP_MODE average_precision_mode",
        "uint32 batch_size",
        "float matching_iou_threshold",
        "uint32 validation_period_during_training",
        "bool visualize_pr_curve",
    ],
    "NMSConfig": [
        "float confidence_threshold",
        "float clustering_iou_threshold",
        "uint32 top_k",
        "uint32 infer_nms_score_bits",
        "bool force_on_cpu",
    ],
}

# DetectNet_v2's dataset and augmentation messages, which TLT 2.0 gave the other detectors too.
_DATA = {
    "DataSource": [
        "string tfrecords_path",
        "string image_directory_path",
        "float source_weight",
    ],
    "DatasetConfig": [
        "repeated DataSource data_sources",
        "string image_extension",
        "map<string,string> target_class_mapping",
        "oneof:dataset_split_type uint32 validation_fold",
        "oneof:dataset_split_type DataSource validation_data_source",
    ],
    "Preprocessing": [
        "uint32 output_image_width",
        "uint32 output_image_height",
        "uint32 output_image_channel",
        "uint32 output_image_min",
        "uint32 output_image_max",
        "uint32 crop_left",
        "uint32 crop_top",
        "uint32 crop_right",
        "uint32 crop_bottom",
        "float min_bbox_width",
        "float min_bbox_height",
        "float scale_width",
        "float scale_height",
        "bool enable_auto_resize",
    ],
    "SpatialAugmentation": [
        "float hflip_probability",
        "float vflip_probability",
        "float zoom_min",
        "float zoom_max",
        "float translate_max_x",
        "float translate_max_y",
        "float rotate_rad_max",
        "float rotate_probability",
    ],
    "ColorAugmentation": [
        "float color_shift_stddev",
        "float hue_rotation_max",
        "float saturation_shift_max",
        "float contrast_scale_max",
        "float contrast_center",
    ],
    "AugmentationConfig": [
        "Preprocessing preprocessing",
        "SpatialAugmentation spatial_augmentation",
        "ColorAugmentation color_augmentation",
    ],
}

_COMMON = {**_TRAINING, **_DATA}
_EXPERIMENT = [
    "uint32 random_seed",
    "DatasetConfig dataset_config",
    "AugmentationConfig augmentation_config",
    "TrainingConfig training_config",
    "EvalConfig eval_config",
    "NMSConfig nms_config",
]

_SSD_CONFIG_FIELDS = [
    "string aspect_ratios",
    "string aspect_ratios_global",
    "bool two_boxes_for_ar1",
    "bool clip_boxes",
    "string variances",
    "string scales",
    "float min_scale",
    "float max_scale",
    "string steps",
    "string offsets",
    "string arch",
    "uint32 nlayers",
    "bool freeze_bn",
    "repeated uint32 freeze_blocks",
]

SSD_TLT2 = {
    "package": "tlt2_ssd",
    "root": "Experiment",
    "messages": {
        **_COMMON,
        "SSDConfig": list(_SSD_CONFIG_FIELDS),
        "DSSDConfig": _SSD_CONFIG_FIELDS + ["uint32 pred_num_channels"],
        "Experiment": _EXPERIMENT + [
            "oneof:network SSDConfig ssd_config",
            "oneof:network DSSDConfig dssd_config",
        ],
    },
}

RETINANET_TLT2 = {
    "package": "tlt2_retinanet",
    "root": "Experiment",
    "messages": {
        **_COMMON,
        "RetinaNetConfig": _SSD_CONFIG_FIELDS + [
            "float loss_loc_weight",
            "float focal_loss_alpha",
            "float focal_loss_gamma",
            "uint32 n_kernels",
            "uint32 feature_size",
            "float pos_iou_thresh",
            "float neg_iou_thresh",
            "uint32 n_anchor_levels",
            "bool all_projections",
        ],
        "Experiment": _EXPERIMENT + [
            "RetinaNetConfig retinanet_config",
            "map<string,float> class_weighting",
        ],
    },
}

YOLO_TLT2 = {
    "package": "tlt2_yolo",
    "root": "Experiment",
    "messages": {
        **_COMMON,
        "YOLOConfig": [
            "string big_anchor_shape",
            "string mid_anchor_shape",
            "string small_anchor_shape",
            "float matching_neutral_box_iou",
            "string arch",
            "uint32 nlayers",
            "uint32 arch_conv_blocks",
            "float loss_loc_weight",
            "float loss_neg_obj_weights",
            "float loss_class_weights",
            "repeated uint32 freeze_blocks",
            "bool freeze_bn",
        ],
        "Experiment": _EXPERIMENT + ["YOLOConfig yolo_config"],
    },
}

# TLT 2.0's DetectNet_v2, inference and dataset_convert specs are read with TAO 4.0's messages plus
# the scalar fields NVIDIA's own TLT 2.0 specs (the face-mask-detection tutorial) write and TAO 4.0
# no longer has: spec kind -> message -> field declarations.
TLT2_ADDITIONS = {
    "detectnet_v2_inference": {"ClasswiseBboxHandlerConfig": ["float confidence_threshold"]},
}

SCHEMAS = {
    "ssd_tlt2": SSD_TLT2,
    "retinanet_tlt2": RETINANET_TLT2,
    "yolo_tlt2": YOLO_TLT2,
}

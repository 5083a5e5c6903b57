"""The spec file schema, as plain data (written from tao-contract.md section 6).

Each schema is one proto3 file: a package, a root message and its messages.  A message is a list
of field declarations ``"[repeated|oneof:<group>] <type> <name>"``; types are proto scalar names,
message names of the same schema, or enum names ``Message.Enum`` declared in ENUMS.  proto `map`
fields are written as repeated key/value messages, which parse the same text.
Field numbers are assigned in declaration order (text format does not see them).
"""

from __future__ import annotations

ENUMS = {
    "RegularizerConfig.TYPE": ("NO_REG", "L1", "L2"),
    "EvalConfig.AP_MODE": ("SAMPLE", "INTEGRATE"),
    "EvaluationConfig.AP_MODE": ("SAMPLE", "INTEGRATE"),
    "ClusteringConfig.ClusteringAlgorithm": ("DBSCAN", "NMS", "HYBRID"),
    "TrainingPrecision.BackendFloatx": ("FLOAT32", "FLOAT16", "INVALID"),
    "TensorRTConfig.Parser": ("ETLT", "UFF", "CAFFE"),
    "TensorRTConfig.BackendDataType": ("FP32", "FP16", "INT8"),
}

# ---------------------------------------------------------------------------------------------
# messages shared by SSD, DSSD, RetinaNet and YOLO (TAO "common" protos)

_KV = {
    "StringMapEntry": ["string key", "string value"],
    "FloatMapEntry": ["string key", "float value"],
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
}

_DETECTION_COMMON = {
    **_KV,
    **_TRAINING,
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
    "DataSource": [
        "oneof:labels_format string tfrecords_path",
        "oneof:labels_format string label_directory_path",
        "string image_directory_path",
        "string root_path",
        "float source_weight",
    ],
    "DatasetConfig": [
        "repeated DataSource data_sources",
        "string image_extension",
        "repeated StringMapEntry target_class_mapping",
        "oneof:dataset_split_type uint32 validation_fold",
        "repeated DataSource validation_data_sources",
        "bool include_difficult_in_training",
        "string type",
        "bool is_monochrome",
    ],
}

_SSD_AUGMENTATION = {
    "AugmentationConfig": [
        "uint32 output_width",
        "uint32 output_height",
        "uint32 output_channel",
        "float random_crop_min_scale",
        "float random_crop_max_scale",
        "float random_crop_min_ar",
        "float random_crop_max_ar",
        "float zoom_out_min_scale",
        "float zoom_out_max_scale",
        "int32 brightness",
        "float contrast",
        "float saturation",
        "int32 hue",
        "float random_flip",
        "repeated FloatMapEntry image_mean",
    ],
}

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

SSD = {
    "package": "ssd",
    "root": "Experiment",
    "messages": {
        **_DETECTION_COMMON,
        **_SSD_AUGMENTATION,
        "SSDConfig": list(_SSD_CONFIG_FIELDS),
        "DSSDConfig": _SSD_CONFIG_FIELDS + ["uint32 pred_num_channels"],
        "Experiment": [
            "uint32 random_seed",
            "DatasetConfig dataset_config",
            "AugmentationConfig augmentation_config",
            "TrainingConfig training_config",
            "EvalConfig eval_config",
            "NMSConfig nms_config",
            "oneof:network SSDConfig ssd_config",
            "oneof:network DSSDConfig dssd_config",
        ],
    },
}

RETINANET = {
    "package": "retinanet",
    "root": "Experiment",
    "messages": {
        **_DETECTION_COMMON,
        **_SSD_AUGMENTATION,
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
        "Experiment": [
            "uint32 random_seed",
            "DatasetConfig dataset_config",
            "AugmentationConfig augmentation_config",
            "TrainingConfig training_config",
            "EvalConfig eval_config",
            "NMSConfig nms_config",
            "RetinaNetConfig retinanet_config",
            "repeated FloatMapEntry class_weighting",
        ],
    },
}

_YOLO_AUGMENTATION = {
    "AugmentationConfig": [
        "float hue",
        "float saturation",
        "float exposure",
        "float vertical_flip",
        "float horizontal_flip",
        "float jitter",
        "uint32 output_width",
        "uint32 output_height",
        "uint32 output_channel",
        "uint32 randomize_input_shape_period",
        "float mosaic_prob",
        "float mosaic_min_ratio",
        "repeated FloatMapEntry image_mean",
        "uint32 output_depth",
    ],
}

_YOLO_CONFIG_FIELDS = [
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
    "bool force_relu",
]

YOLO_V3 = {
    "package": "yolov3",
    "root": "Experiment",
    "messages": {
        **_DETECTION_COMMON,
        **_YOLO_AUGMENTATION,
        "YOLOv3Config": list(_YOLO_CONFIG_FIELDS),
        "Experiment": [
            "uint32 random_seed",
            "YOLOv3Config yolov3_config",
            "TrainingConfig training_config",
            "EvalConfig eval_config",
            "NMSConfig nms_config",
            "AugmentationConfig augmentation_config",
            "DatasetConfig dataset_config",
        ],
    },
}

YOLO_V4 = {
    "package": "yolov4",
    "root": "Experiment",
    "messages": {
        **_DETECTION_COMMON,
        **_YOLO_AUGMENTATION,
        "YOLOv4Config": _YOLO_CONFIG_FIELDS + [
            "float box_matching_iou",
            "string activation",
            "float label_smoothing",
            "float big_grid_xy_extend",
            "float mid_grid_xy_extend",
            "float small_grid_xy_extend",
        ],
        "Experiment": [
            "uint32 random_seed",
            "YOLOv4Config yolov4_config",
            "TrainingConfig training_config",
            "EvalConfig eval_config",
            "NMSConfig nms_config",
            "AugmentationConfig augmentation_config",
            "DatasetConfig dataset_config",
        ],
    },
}

# ---------------------------------------------------------------------------------------------
# DetectNet_v2

_CLUSTERING = {
    "ClusteringConfig": [
        "float coverage_threshold",
        "float dbscan_eps",
        "float dbscan_min_samples",
        "int32 minimum_bounding_box_height",
        "ClusteringConfig.ClusteringAlgorithm clustering_algorithm",
        "float nms_iou_threshold",
        "float nms_confidence_threshold",
        "float dbscan_confidence_threshold",
    ],
}

DETECTNET_V2 = {
    "package": "detectnet_v2",
    "root": "Experiment",
    "messages": {
        **_KV,
        **_TRAINING,
        **_CLUSTERING,
        "DataSource": [
            "string tfrecords_path",
            "string image_directory_path",
            "float source_weight",
        ],
        "DatasetConfig": [
            "repeated DataSource data_sources",
            "string image_extension",
            "repeated StringMapEntry target_class_mapping",
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
        "TargetClassPostprocessing": ["ClusteringConfig clustering_config"],
        "TargetClassPostprocessingEntry": ["string key", "TargetClassPostprocessing value"],
        "PostProcessingConfig": ["repeated TargetClassPostprocessingEntry target_class_config"],
        "BboxObjective": ["string input", "float scale", "float offset"],
        "CovObjective": ["string input"],
        "ObjectiveSet": ["BboxObjective bbox", "CovObjective cov"],
        "TrainingPrecision": ["TrainingPrecision.BackendFloatx backend_floatx"],
        "ModelConfig": [
            "string pretrained_model_file",
            "bool load_graph",
            "uint32 num_layers",
            "bool use_pooling",
            "bool use_batch_norm",
            "float dropout_rate",
            "ObjectiveSet objective_set",
            "TrainingPrecision training_precision",
            "string arch",
            "repeated uint32 freeze_blocks",
            "bool freeze_bn",
            "bool all_projections",
        ],
        "EvaluationBoxConfig": [
            "int32 minimum_height", "int32 maximum_height", "int32 minimum_width", "int32 maximum_width",
        ],
        "EvaluationBoxConfigEntry": ["string key", "EvaluationBoxConfig value"],
        "EvaluationConfig": [
            "uint32 validation_period_during_training",
            "uint32 first_validation_epoch",
            "repeated FloatMapEntry minimum_detection_ground_truth_overlap",
            "repeated EvaluationBoxConfigEntry evaluation_box_config",
            "EvaluationConfig.AP_MODE average_precision_mode",
        ],
        "Objective": ["string name", "float initial_weight", "float weight_target"],
        "TargetClass": [
            "string name",
            "float class_weight",
            "float coverage_foreground_weight",
            "repeated Objective objectives",
        ],
        "CostFunctionConfig": [
            "repeated TargetClass target_classes",
            "bool enable_autoweighting",
            "float max_objective_weight",
            "float min_objective_weight",
        ],
        "CostScalingConfig": [
            "bool enabled", "double initial_exponent", "double increment", "double decrement",
        ],
        "DetectNetVisualizerConfig": [
            "bool enabled",
            "uint32 num_images",
            "uint32 scalar_logging_frequency",
            "uint32 infrequent_logging_frequency",
        ],
        "TrainingConfig": [
            "uint32 batch_size_per_gpu",
            "uint32 num_epochs",
            "LearningRateConfig learning_rate",
            "RegularizerConfig regularizer",
            "OptimizerConfig optimizer",
            "CostScalingConfig cost_scaling",
            "uint32 checkpoint_interval",
            "bool enable_qat",
            "uint32 max_queue_size",
            "uint32 n_workers",
            "bool use_multiprocessing",
            "DetectNetVisualizerConfig visualizer",
        ],
        "BboxRasterizerTargetClass": [
            "float cov_center_x",
            "float cov_center_y",
            "float cov_radius_x",
            "float cov_radius_y",
            "float bbox_min_radius",
        ],
        "BboxRasterizerTargetClassEntry": ["string key", "BboxRasterizerTargetClass value"],
        "BboxRasterizerConfig": [
            "repeated BboxRasterizerTargetClassEntry target_class_config",
            "float deadzone_radius",
        ],
        "Experiment": [
            "uint32 random_seed",
            "DatasetConfig dataset_config",
            "AugmentationConfig augmentation_config",
            "PostProcessingConfig postprocessing_config",
            "ModelConfig model_config",
            "EvaluationConfig evaluation_config",
            "CostFunctionConfig cost_function_config",
            "TrainingConfig training_config",
            "BboxRasterizerConfig bbox_rasterizer_config",
        ],
    },
}

DETECTNET_V2_INFERENCE = {
    "package": "detectnet_v2_inference",
    "root": "InferenceSpec",
    "messages": {
        **_CLUSTERING,
        "TLTConfig": ["string model"],
        "CalibratorConfig": [
            "string calibration_cache", "string calibration_tensorfile", "uint32 n_batches",
        ],
        "TensorRTConfig": [
            "TensorRTConfig.Parser parser",
            "string caffemodel",
            "string prototxt",
            "string uff_model",
            "string etlt_model",
            "TensorRTConfig.BackendDataType backend_data_type",
            "bool save_engine",
            "string trt_engine",
            "CalibratorConfig calibrator_config",
        ],
        "InferencerConfig": [
            "repeated string target_classes",
            "uint32 image_width",
            "uint32 image_height",
            "uint32 image_channels",
            "uint32 batch_size",
            "uint32 gpu_index",
            "uint32 stride",
            "oneof:model_config_type TLTConfig tlt_config",
            "oneof:model_config_type TensorRTConfig tensorrt_config",
        ],
        "Color": ["float R", "float G", "float B"],
        "ConfidenceConfig": ["float confidence_threshold", "string confidence_model_filename"],
        "BboxHandlerClassConfig": [
            "string confidence_model",
            "string output_map",
            "Color bbox_color",
            "ClusteringConfig clustering_config",
        ],
        "BboxHandlerClassConfigEntry": ["string key", "BboxHandlerClassConfig value"],
        "BboxHandlerConfig": [
            "bool kitti_dump",
            "bool disable_overlay",
            "int32 overlay_linewidth",
            "repeated BboxHandlerClassConfigEntry classwise_bbox_handler_config",
            "repeated string postproc_classes",
        ],
        "InferenceSpec": [
            "InferencerConfig inferencer_config",
            "BboxHandlerConfig bbox_handler_config",
        ],
    },
}

DATASET_EXPORT = {
    "package": "dataset_export",
    "root": "DatasetExportConfig",
    "messages": {
        **_KV,
        "KITTIConfig": [
            "string root_directory_path",
            "string image_dir_name",
            "string label_dir_name",
            "string point_clouds_dir",
            "string calibrations_dir",
            "string kitti_sequence_to_frames_file",
            "string image_extension",
            "uint32 num_partitions",
            "uint32 num_shards",
            "string partition_mode",
            "float val_split",
        ],
        "COCOConfig": [
            "string root_directory_path",
            "repeated string img_dir_names",
            "repeated string annotation_files",
            "uint32 num_partitions",
            "repeated uint32 num_shards",
        ],
        "DatasetExportConfig": [
            "oneof:convert_config_type COCOConfig coco_config",
            "oneof:convert_config_type KITTIConfig kitti_config",
            "string image_directory_path",
            "repeated StringMapEntry target_class_mapping",
        ],
    },
}

# ---------------------------------------------------------------------------------------------
# TLT 2.0: SSD, DSSD, RetinaNet and YOLO (`tlt-train yolo`) read DetectNet_v2's dataset_config
# and augmentation_config; YOLO's block is yolo_config.  There is no validation_data_sources,
# include_difficult_in_training, output_width or image_mean.

_TLT2_DATA = {name: DETECTNET_V2["messages"][name] for name in (
    "DataSource", "DatasetConfig", "Preprocessing", "SpatialAugmentation", "ColorAugmentation",
    "AugmentationConfig")}


def _tlt2(schema: dict) -> dict:
    return {**schema, "messages": {**schema["messages"], **_TLT2_DATA}}


SSD_TLT2 = _tlt2(SSD)
RETINANET_TLT2 = _tlt2(RETINANET)
YOLO_TLT2 = {
    "package": "yolo",
    "root": "Experiment",
    "messages": {
        **{k: v for k, v in YOLO_V3["messages"].items() if k not in ("YOLOv3Config", "Experiment")},
        **_TLT2_DATA,
        "YOLOConfig": [d for d in _YOLO_CONFIG_FIELDS if d != "bool force_relu"],
        "Experiment": [
            "uint32 random_seed",
            "YOLOConfig yolo_config",
            "TrainingConfig training_config",
            "EvalConfig eval_config",
            "NMSConfig nms_config",
            "AugmentationConfig augmentation_config",
            "DatasetConfig dataset_config",
        ],
    },
}

SCHEMAS = {
    "ssd": SSD,
    "retinanet": RETINANET,
    "yolo_v3": YOLO_V3,
    "ssd_tlt2": SSD_TLT2,
    "retinanet_tlt2": RETINANET_TLT2,
    "yolo_tlt2": YOLO_TLT2,
    "yolo_v4": YOLO_V4,
    "detectnet_v2": DETECTNET_V2,
    "detectnet_v2_inference": DETECTNET_V2_INFERENCE,
    "dataset_export": DATASET_EXPORT,
}

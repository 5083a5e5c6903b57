"""Model building, the raw (export) form of the model, losses and a predictor.

Every --net name builds the same small network: torchvision's SSDLite with a MobileNetV3-Large backbone, no
pretrained weights, class 0 = BACKGROUND, at the requested input resolution.
"""
import time
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.detection.image_list import ImageList

from ..utils import box_utils
from ..utils.measurements import class_average_precision

NET_TYPES = ("mb1-ssd", "mb1-ssd-lite", "mb2-ssd-lite", "vgg16-ssd", "sq-ssd-lite")


def create_net(net_type, num_classes, resolution=300):
    if net_type not in NET_TYPES and net_type != "ssd-mobilenet":
        raise ValueError(f"unknown network type {net_type}")
    model = torchvision.models.detection.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=num_classes,
        # BatchNorm's default momentum (torchvision's SSDLite uses 0.03, made for long schedules): on short runs the
        # running statistics, which validation, evaluation and export use, then catch up with the weights
        norm_layer=partial(nn.BatchNorm2d, eps=0.001, momentum=0.1))
    size = int(resolution)
    # the builder fixes 320 x 320; train and run at the requested resolution instead
    model.transform.min_size = (size,)
    model.transform.max_size = size
    model.transform.fixed_size = (size, size)
    model.resolution = size
    return model


def base_net_parameters(model):
    return list(model.backbone.features.parameters())


def extra_layers_parameters(model):
    return list(model.backbone.extra.parameters())


def head_parameters(model):
    return list(model.head.parameters())


def load_state(model, path, skip_head=False):
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if skip_head:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        model.load_state_dict(state, strict=False)
    else:
        model.load_state_dict(state)
    return model


def load_base_net(model, path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    prefix = "backbone.features."
    state = {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
    model.backbone.features.load_state_dict(state, strict=False)
    return model


def normalise(images, model):
    """[0, 1] images -> what the backbone takes (the mean/std of the model's transform: [-1, 1] for SSDLite)."""
    mean = torch.tensor(model.transform.image_mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(model.transform.image_std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std


def compute_priors(model, width, height):
    """The model's anchors for a fixed input size, centre form (cx, cy, w, h) normalised to [0, 1]."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            dummy = torch.zeros((1, 3, height, width), device=device)
            features = list(model.backbone(dummy).values())
            anchors = model.anchor_generator(ImageList(dummy, [(height, width)]), features)[0]
    finally:
        model.train(was_training)
    scale = torch.tensor([width, height, width, height], dtype=anchors.dtype, device=anchors.device)
    return box_utils.corner_to_center(anchors / scale).detach()


class RawSSD(nn.Module):
    """backbone -> head -> (softmax scores, decoded boxes); what onnx_export.py writes and eval_ssd.py runs.

    Input: (B, 3, height, width) normalised like the backbone expects ([-1, 1]).
    Output: scores (B, priors, classes incl. BACKGROUND) and boxes (B, priors, 4) as x1, y1, x2, y2 in [0, 1].
    No NMS.
    """

    def __init__(self, model, width=300, height=300):
        super().__init__()
        wx, wy, ww, wh = box_utils.BOX_CODER_WEIGHTS
        assert wx == wy and ww == wh
        self.backbone = model.backbone
        self.head = model.head
        self.xy_weight = float(wx)
        self.wh_weight = float(ww)
        self.register_buffer("priors", compute_priors(model, width, height))

    def forward(self, x):
        features = list(self.backbone(x).values())
        out = self.head(features)
        scores = torch.softmax(out["cls_logits"], dim=2)
        offsets = out["bbox_regression"]
        centre = self.priors[:, :2] + offsets[..., :2] / self.xy_weight * self.priors[:, 2:]
        size = self.priors[:, 2:] * torch.exp(torch.clamp(offsets[..., 2:] / self.wh_weight,
                                                          max=box_utils.MAX_LOG_SCALE))
        boxes = torch.cat([centre - size / 2, centre + size / 2], dim=2)
        return scores, torch.clamp(boxes, 0.0, 1.0)


def is_batch_norm(module):
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def losses(model, images, targets):
    """(total, regression, classification) from torchvision's SSD loss; the model must be in train mode."""
    out = model(list(images), targets)
    regression = out["bbox_regression"]
    classification = out["classification"]
    return regression + classification, regression, classification


def validation_losses(model, images, targets):
    """The training losses with no gradient and BatchNorm using its running statistics (not updating them)."""
    model.train()
    norms = [m for m in model.modules() if is_batch_norm(m)]
    for m in norms:
        m.eval()
    try:
        with torch.no_grad():
            return losses(model, images, targets)
    finally:
        for m in norms:
            m.train()


class Predictor:
    def __init__(self, model, device=torch.device("cpu"), nms_method="hard", iou_threshold=0.45,
                 prob_threshold=0.01, top_k=200):
        self.size = getattr(model, "resolution", 300)
        self.model = model
        self.raw = RawSSD(model, self.size, self.size).to(device).eval()
        self.device = device
        self.nms_method = nms_method
        self.iou_threshold = iou_threshold
        self.prob_threshold = prob_threshold
        self.top_k = top_k

    def predict_batch(self, images01, original_sizes):
        """images01: (B, 3, size, size) in [0, 1]; original_sizes: [(width, height)].
        Returns per image (boxes in original pixels, labels, scores)."""
        with torch.no_grad():
            scores, boxes = self.raw(normalise(images01.to(self.device), self.model))
        scores, boxes = scores.cpu(), boxes.cpu()
        results = []
        for i, (width, height) in enumerate(original_sizes):
            b, l, s = box_utils.postprocess(scores[i], boxes[i], self.prob_threshold, self.iou_threshold,
                                            self.nms_method, self.top_k)
            b = b * torch.tensor([width, height, width, height], dtype=b.dtype)
            results.append((b, l, s))
        return results

    def predict(self, pil_image):
        width, height = pil_image.size
        resized = pil_image.convert("RGB").resize((self.size, self.size))
        tensor = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)
        return self.predict_batch(tensor.unsqueeze(0), [(width, height)])[0]


def evaluate(predictor, dataset, class_names, iou_threshold=0.5, use_2007_metric=True, batch_size=8,
             progress=None):
    """VOC AP per class (BACKGROUND skipped) on dataset's images; also the detections, per class name:
    [(image_id, score, x1, y1, x2, y2)] in original image pixels (0-based)."""
    detections = {name: [] for name in class_names[1:]}
    ground_truth = {name: {} for name in class_names[1:]}
    dataset_index = {name: i for i, name in enumerate(dataset.class_names)}
    start = time.time()
    for first in range(0, len(dataset), batch_size):
        indexes = range(first, min(first + batch_size, len(dataset)))
        tensors, sizes, ids = [], [], []
        for i in indexes:
            image_id, (boxes, labels, difficult) = dataset.get_annotation(i)
            for name in ground_truth:
                c = dataset_index.get(name)
                mask = labels == c if c is not None else np.zeros(len(labels), dtype=bool)
                ground_truth[name][image_id] = (boxes[mask], difficult[mask])
            image, size = dataset.load_image(image_id, predictor.size)
            tensors.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1))
            sizes.append(size)
            ids.append(image_id)
        for image_id, (b, l, s) in zip(ids, predictor.predict_batch(torch.stack(tensors), sizes)):
            for box, label, score in zip(b.tolist(), l.tolist(), s.tolist()):
                if 0 < label < len(class_names):
                    detections[class_names[label]].append((image_id, score, *box))
        if progress:
            progress(indexes[-1] + 1, len(dataset), time.time() - start)
    aps = []
    for name in class_names[1:]:
        dets = [(d[0], d[1], d[2:]) for d in detections[name]]
        aps.append(class_average_precision(ground_truth[name], dets, iou_threshold, use_2007_metric))
    return aps, detections

"""Box helpers: corner to centre form, IoU, hard and soft NMS (RawSSD in vision/ssd/ssd.py decodes the offsets)."""
import math

import numpy as np
import torch
import torchvision

# torchvision's SSD encodes offsets with these weights (dx, dy, dw, dh)
BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
MAX_LOG_SCALE = math.log(1000.0 / 16)


def corner_to_center(boxes):
    wh = boxes[..., 2:] - boxes[..., :2]
    return torch.cat([boxes[..., :2] + wh / 2, wh], dim=-1)


def iou_matrix(a, b):
    """IoU of every box in a (N, 4) with every box in b (M, 4), numpy corner form."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def hard_nms(boxes, scores, iou_threshold, top_k=-1):
    keep = torchvision.ops.nms(boxes, scores, iou_threshold)
    if top_k > 0:
        keep = keep[:top_k]
    return keep


def soft_nms(boxes, scores, sigma=0.5, score_threshold=0.001, top_k=-1):
    """Gaussian soft-NMS: returns (indices kept, their decayed scores), best first."""
    scores = scores.clone()
    remaining = torch.arange(len(scores))
    picked, picked_scores = [], []
    while len(remaining):
        best = int(torch.argmax(scores[remaining]))
        idx = int(remaining[best])
        if scores[idx] < score_threshold:
            break
        picked.append(idx)
        picked_scores.append(float(scores[idx]))
        if 0 < top_k == len(picked):
            break
        remaining = torch.cat([remaining[:best], remaining[best + 1:]])
        if len(remaining):
            ious = torchvision.ops.box_iou(boxes[idx:idx + 1], boxes[remaining])[0]
            scores[remaining] = scores[remaining] * torch.exp(-(ious * ious) / sigma)
    return torch.tensor(picked, dtype=torch.long), torch.tensor(picked_scores)


def postprocess(scores, boxes, prob_threshold=0.01, iou_threshold=0.45, nms_method="hard", top_k=200):
    """Per-class NMS on one image's raw outputs: scores (P, C) after softmax, boxes (P, 4) corner form.
    Returns (boxes K x 4, labels K, scores K); class 0 (BACKGROUND) is never reported."""
    out_boxes, out_labels, out_scores = [], [], []
    for c in range(1, scores.shape[1]):
        mask = scores[:, c] > prob_threshold
        if not bool(mask.any()):
            continue
        cls_scores, cls_boxes = scores[mask, c], boxes[mask]
        if nms_method == "soft":
            keep, cls_scores = soft_nms(cls_boxes, cls_scores, top_k=top_k)
            cls_boxes = cls_boxes[keep]
        else:
            keep = hard_nms(cls_boxes, cls_scores, iou_threshold, top_k)
            cls_boxes, cls_scores = cls_boxes[keep], cls_scores[keep]
        out_boxes.append(cls_boxes)
        out_scores.append(cls_scores)
        out_labels.append(torch.full((len(cls_scores),), c, dtype=torch.long))
    if not out_boxes:
        return torch.zeros((0, 4)), torch.zeros((0,), dtype=torch.long), torch.zeros((0,))
    return torch.cat(out_boxes), torch.cat(out_labels), torch.cat(out_scores)

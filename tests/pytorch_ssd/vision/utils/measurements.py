"""VOC average precision."""
import numpy as np

from .box_utils import iou_matrix


def average_precision(precision, recall, use_2007_metric=True):
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if use_2007_metric:
        # 11 recall points 0, 0.1, ..., 1: the best precision reached at that recall or beyond
        total = 0.0
        for t in np.linspace(0.0, 1.0, 11):
            reached = precision[recall >= t]
            total += reached.max() if reached.size else 0.0
        return total / 11.0
    # area under the precision envelope
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def class_average_precision(ground_truth, detections, iou_threshold=0.5, use_2007_metric=True):
    """ground_truth: {image_id: (boxes N x 4, difficult N)} for one class;
    detections: list of (image_id, score, box) for that class.
    A detection that best overlaps a difficult object counts neither way; with no non-difficult object the AP is 0."""
    positives = sum(int((~np.asarray(d, dtype=bool)).sum()) for _, d in ground_truth.values())
    if positives == 0:
        return 0.0
    order = sorted(range(len(detections)), key=lambda i: -detections[i][1])
    matched = {image_id: np.zeros(len(boxes), dtype=bool) for image_id, (boxes, _) in ground_truth.items()}
    tp, fp = [], []
    for i in order:
        image_id, _, box = detections[i]
        gt = ground_truth.get(image_id)
        if gt is None or len(gt[0]) == 0:
            tp.append(0)
            fp.append(1)
            continue
        boxes, difficult = gt
        ious = iou_matrix([box], boxes)[0]
        best = int(np.argmax(ious))
        if ious[best] > iou_threshold:
            if difficult[best]:
                continue
            if not matched[image_id][best]:
                matched[image_id][best] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        else:
            tp.append(0)
            fp.append(1)
    if not tp:
        return 0.0
    tp = np.cumsum(tp)
    fp = np.cumsum(fp)
    recall = tp / float(positives)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return float(average_precision(precision, recall, use_2007_metric))

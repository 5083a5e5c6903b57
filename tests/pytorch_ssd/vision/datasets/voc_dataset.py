"""Pascal VOC layout reader.

ROOT/Annotations/<id>.xml, ROOT/JPEGImages/<id>.jpg, ROOT/ImageSets/Main/{trainval,test}.txt (default.txt when the
split's file is missing), ROOT/labels.txt (one class per line; BACKGROUND is put first as class 0; without the file
the 20 VOC classes are used).
"""
import logging
import os
import random
import xml.etree.ElementTree as ET

import numpy as np
import torch
from PIL import Image

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".JPG", ".JPEG", ".png", ".PNG")


def read_class_names(root):
    label_file = os.path.join(root, "labels.txt")
    if not os.path.isfile(label_file):
        logging.info("No labels file, using the default VOC classes.")
        return ["BACKGROUND"] + list(VOC_CLASSES)
    names = []
    with open(label_file) as f:
        for line in f:
            # one class per line; an old-style single comma-separated line is read too
            for part in line.strip().split(","):
                part = part.strip()
                if part:
                    names.append(part)
    if not names or names[0] != "BACKGROUND":
        names.insert(0, "BACKGROUND")
    logging.info(f"VOC Labels read from file: {tuple(names)}")
    return names


def image_set_file(root, is_test):
    main = os.path.join(root, "ImageSets", "Main")
    wanted = os.path.join(main, "test.txt" if is_test else "trainval.txt")
    if os.path.isfile(wanted):
        return wanted
    fallback = os.path.join(main, "default.txt")
    if os.path.isfile(fallback):
        logging.warning(f"could not find {wanted}, using {fallback} instead")
        return fallback
    raise IOError(f"missing ImageSet file {wanted}")


class VOCDataset(torch.utils.data.Dataset):
    """Items are (image, target): image a float tensor 3 x size x size in [0, 1]; target a dict of 'boxes'
    (float N x 4, x1 y1 x2 y2 in pixels of the resized image) and 'labels' (int64 N), as torchvision's SSD takes them.
    """

    def __init__(self, root, is_test=False, keep_difficult=False, size=300, augment=False):
        self.root = os.path.expanduser(root)
        self.is_test = is_test
        self.keep_difficult = keep_difficult
        self.size = int(size)
        self.augment = augment
        self.class_names = read_class_names(self.root)
        self.class_dict = {name: i for i, name in enumerate(self.class_names)}
        with open(image_set_file(self.root, is_test)) as f:
            self.ids = [line.strip() for line in f if line.strip()]

    def __len__(self):
        return len(self.ids)

    # -- raw access -------------------------------------------------------------------------------------------
    def image_path(self, image_id):
        base = os.path.join(self.root, "JPEGImages", image_id)
        for ext in IMAGE_EXTENSIONS:
            if os.path.isfile(base + ext):
                return base + ext
        raise IOError(f"missing image {base}.jpg")

    def get_annotation(self, index):
        """(image_id, (boxes, labels, is_difficult)) with every object of a known class, difficult ones included;
        boxes in original image pixels (0-based)."""
        image_id = self.ids[index]
        return image_id, self._read_annotation(image_id)

    def _read_annotation(self, image_id):
        tree = ET.parse(os.path.join(self.root, "Annotations", image_id + ".xml"))
        boxes, labels, difficult = [], [], []
        for obj in tree.findall("object"):
            name = obj.find("name").text.strip()
            if name not in self.class_dict:
                continue
            box = obj.find("bndbox")
            # VOC pixel indexes are 1-based
            x1 = float(box.find("xmin").text) - 1
            y1 = float(box.find("ymin").text) - 1
            x2 = float(box.find("xmax").text) - 1
            y2 = float(box.find("ymax").text) - 1
            flag = obj.find("difficult")
            boxes.append([x1, y1, x2, y2])
            labels.append(self.class_dict[name])
            difficult.append(bool(flag is not None and flag.text and int(float(flag.text))))
        return (np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(labels, dtype=np.int64),
                np.array(difficult, dtype=bool))

    def load_image(self, image_id, size=None):
        """(resized RGB PIL image, (original width, original height))."""
        image = Image.open(self.image_path(image_id))
        original = image.size
        size = size or self.size
        if image.format == "JPEG":
            image.draft("RGB", (size, size))  # let libjpeg decode at a reduced scale: much faster for big images
        image = image.convert("RGB").resize((size, size), Image.BILINEAR)
        return image, original

    # -- training items ---------------------------------------------------------------------------------------
    def __getitem__(self, index):
        image_id = self.ids[index]
        boxes, labels, difficult = self._read_annotation(image_id)
        if not self.keep_difficult:
            boxes, labels = boxes[~difficult], labels[~difficult]
        image, (width, height) = self.load_image(image_id)
        s = self.size
        boxes = boxes.copy()
        boxes[:, [0, 2]] *= s / float(width)
        boxes[:, [1, 3]] *= s / float(height)
        boxes = np.clip(boxes, 0, s)
        tensor = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1).contiguous()
        if self.augment and random.random() < 0.5:
            tensor = tensor.flip(-1)
            boxes = np.stack([s - boxes[:, 2], boxes[:, 1], s - boxes[:, 0], boxes[:, 3]], axis=1)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # torchvision refuses degenerate boxes
        target = {"boxes": torch.from_numpy(boxes[keep]).float().reshape(-1, 4),
                  "labels": torch.from_numpy(labels[keep]).long()}
        return tensor, target


def collate(batch):
    images = torch.stack([item[0] for item in batch])
    targets = [item[1] for item in batch]
    return images, targets

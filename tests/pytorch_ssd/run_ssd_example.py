#!/usr/bin/env python3
"""python run_ssd_example.py <net type> <model path> <label path> <image path>: draws the detections on the image
and writes run_ssd_example_output.jpg (tltpipe's test stand-in of pytorch-ssd's run_ssd_example.py)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the vision package beside this script

from PIL import Image, ImageDraw  # noqa: E402

from vision.ssd.ssd import NET_TYPES, Predictor, create_net, load_state  # noqa: E402
from vision.utils.misc import limit_threads, read_labels  # noqa: E402


def main():
    if len(sys.argv) < 5:
        print("Usage: python run_ssd_example.py <net type> <model path> <label path> <image path>")
        sys.exit(0)
    net_type, model_path, label_path, image_path = sys.argv[1:5]
    if net_type not in NET_TYPES:
        print("The net type is wrong. It should be one of " + ", ".join(NET_TYPES) + ".")
        sys.exit(1)
    limit_threads()
    class_names = read_labels(label_path)
    model = create_net(net_type, len(class_names))
    load_state(model, model_path)
    model.eval()
    predictor = Predictor(model, top_k=10, prob_threshold=0.4)

    image = Image.open(image_path).convert("RGB")
    boxes, labels, scores = predictor.predict(image)
    draw = ImageDraw.Draw(image)
    for box, label, score in zip(boxes.tolist(), labels.tolist(), scores.tolist()):
        draw.rectangle(box, outline=(255, 255, 0), width=4)
        draw.text((box[0] + 20, box[1] + 20), f"{class_names[label]}: {score:.2f}", fill=(255, 0, 255))
    path = "run_ssd_example_output.jpg"
    image.save(path)
    print(f"Found {len(scores)} objects. The output image is {path}")


if __name__ == '__main__':
    main()

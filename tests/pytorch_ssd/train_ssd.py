#!/usr/bin/env python3
"""Train an SSD detector on a VOC-layout dataset (tltpipe's test stand-in of pytorch-ssd's train_ssd.py)."""
import argparse
import logging
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the vision package beside this script

import torch  # noqa: E402
from torch.optim.lr_scheduler import CosineAnnealingLR, MultiStepLR  # noqa: E402
from torch.utils.data import ConcatDataset, DataLoader  # noqa: E402

from vision.datasets.voc_dataset import VOCDataset, collate  # noqa: E402
from vision.ssd.ssd import (NET_TYPES, Predictor, base_net_parameters, create_net, evaluate,  # noqa: E402
                            extra_layers_parameters, head_parameters, load_base_net, load_state, losses,
                            validation_losses)
from vision.utils.misc import limit_threads, pick_device, store_labels, str2bool  # noqa: E402

parser = argparse.ArgumentParser(description="Single Shot MultiBox Detector training with PyTorch")

# data
parser.add_argument('--dataset-type', default="open_images", type=str, choices=['voc', 'open_images'],
                    help="the dataset layout: voc or open_images")
parser.add_argument('--datasets', '--data', nargs='+', default=["data"], help="dataset directory path(s)")
parser.add_argument('--balance-data', action='store_true',
                    help="balance the training data by down-sampling the more frequent labels (open_images)")

# network
parser.add_argument('--net', default="mb1-ssd",
                    help="the network: mb1-ssd, mb1-ssd-lite, mb2-ssd-lite, vgg16-ssd or sq-ssd-lite")
parser.add_argument('--freeze-base-net', action='store_true', help="freeze the base net layers")
parser.add_argument('--freeze-net', action='store_true', help="freeze all the layers except the prediction heads")
parser.add_argument('--mb2-width-mult', default=1.0, type=float, help="width multiplier of MobileNetV2")

# weights
parser.add_argument('--base-net', help="a pretrained base model")
parser.add_argument('--pretrained-ssd', default='models/mobilenet-v1-ssd-mp-0_675.pth', type=str,
                    help="a pretrained SSD to start from ('' trains from scratch)")
parser.add_argument('--resume', default=None, type=str, help="a checkpoint to resume training from")

# optimiser
parser.add_argument('--lr', '--learning-rate', default=0.01, type=float, help="initial learning rate")
parser.add_argument('--momentum', default=0.9, type=float, help="momentum of SGD")
parser.add_argument('--weight-decay', default=5e-4, type=float, help="weight decay of SGD")
parser.add_argument('--gamma', default=0.1, type=float, help="gamma of the multi-step scheduler")
parser.add_argument('--base-net-lr', default=0.001, type=float,
                    help="initial learning rate of the base net, or None to use --lr")
parser.add_argument('--extra-layers-lr', default=None, type=float,
                    help="initial learning rate of the layers outside the base net and the heads")

# scheduler
parser.add_argument('--scheduler', default="cosine", type=str, help="the scheduler: multi-step or cosine")
parser.add_argument('--milestones', default="80,100", type=str, help="milestones of the multi-step scheduler")
parser.add_argument('--t-max', default=100, type=float, help="T_max of the cosine scheduler")

# training
parser.add_argument('--batch-size', default=4, type=int, help="batch size")
parser.add_argument('--num-epochs', '--epochs', default=30, type=int, help="the number of epochs")
parser.add_argument('--num-workers', '--workers', default=2, type=int, help="data loading workers")
parser.add_argument('--validation-epochs', default=1, type=int, help="validate every this many epochs")
parser.add_argument('--debug-steps', default=10, type=int, help="log the training loss every this many steps")
parser.add_argument('--use-cuda', default=True, type=str2bool, help="use CUDA to train the model")
parser.add_argument('--checkpoint-folder', '--model-dir', default='models/',
                    help="directory for saving the checkpoints")

# newer flags
parser.add_argument('--resolution', type=int, default=300, help="the input resolution of the network, in pixels")
parser.add_argument('--validation-mean-ap', action='store_true', help="also compute the mean AP at validation")
parser.add_argument('--log-level', default='info', type=str,
                    help="logging level: debug, info, warning, error or critical")


def train_one_epoch(loader, model, optimizer, device, debug_steps, epoch):
    model.train()
    steps = len(loader)
    total = regression = classification = 0.0
    count = 0
    for i, (images, targets) in enumerate(loader, 1):
        images = images.to(device)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        optimizer.zero_grad()
        loss, reg_loss, cls_loss = losses(model, images, targets)
        loss.backward()
        optimizer.step()
        total += loss.item()
        regression += reg_loss.item()
        classification += cls_loss.item()
        count += 1
        if i % debug_steps == 0 or i == steps:
            logging.info(
                f"Epoch: {epoch}, Step: {i}/{steps}, "
                f"Avg Loss: {total / count:.4f}, "
                f"Avg Regression Loss {regression / count:.4f}, "
                f"Avg Classification Loss: {classification / count:.4f}")
            total = regression = classification = 0.0
            count = 0


def validate(loader, model, device):
    total = regression = classification = 0.0
    batches = 0
    for images, targets in loader:
        images = images.to(device)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        loss, reg_loss, cls_loss = validation_losses(model, images, targets)
        total += loss.item()
        regression += reg_loss.item()
        classification += cls_loss.item()
        batches += 1
    return total / batches, regression / batches, classification / batches


def save_checkpoint(model, path):
    """Write to a hidden temporary name, then rename: a cut-off write never carries the checkpoint's name."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}.part")
    torch.save(model.state_dict(), partial)
    os.replace(partial, path)


def main():
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stdout, format='%(asctime)s - %(message)s',
                        level=getattr(logging, str(args.log_level).upper(), logging.INFO))
    logging.info(args)
    limit_threads()

    device = pick_device(args.use_cuda)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        logging.info("Using CUDA...")

    if args.net not in NET_TYPES:
        logging.fatal(f"Invalid network type: {args.net}")
        parser.print_help(sys.stderr)
        sys.exit(1)
    if args.dataset_type != "voc":
        logging.fatal(f"Dataset type {args.dataset_type} is not supported by this stand-in (voc only).")
        sys.exit(1)
    if args.scheduler not in ("cosine", "multi-step"):
        logging.fatal(f"Unsupported scheduler: {args.scheduler}.")
        parser.print_help(sys.stderr)
        sys.exit(1)

    timer = time.time()
    os.makedirs(args.checkpoint_folder, exist_ok=True)

    logging.info("Prepare training datasets.")
    datasets = []
    for path in args.datasets:
        dataset = VOCDataset(path, is_test=False, keep_difficult=False, size=args.resolution, augment=True)
        label_file = os.path.join(args.checkpoint_folder, "labels.txt")
        store_labels(label_file, dataset.class_names)
        logging.info(f"Stored labels into file {label_file}.")
        num_classes = len(dataset.class_names)
        datasets.append(dataset)
    train_dataset = ConcatDataset(datasets)
    logging.info(f"Train dataset size: {len(train_dataset)}")
    # A last batch of one image cannot train this model's BatchNorm (its smallest feature maps are 1x1): drop it.
    train_loader = DataLoader(train_dataset, args.batch_size, num_workers=args.num_workers, shuffle=True,
                              collate_fn=collate, drop_last=len(train_dataset) % args.batch_size == 1)

    logging.info("Prepare Validation datasets.")
    val_dataset = VOCDataset(args.datasets[-1], is_test=True, keep_difficult=False, size=args.resolution)
    logging.info(f"Validation dataset size: {len(val_dataset)}")
    if len(val_dataset) == 0:
        logging.fatal("The validation image set is empty.")
        sys.exit(1)
    val_loader = DataLoader(val_dataset, args.batch_size, num_workers=args.num_workers, shuffle=False,
                            collate_fn=collate)

    logging.info("Build network.")
    model = create_net(args.net, num_classes, args.resolution)

    base_net_lr = args.base_net_lr if args.base_net_lr is not None else args.lr
    extra_layers_lr = args.extra_layers_lr if args.extra_layers_lr is not None else args.lr
    if args.freeze_base_net:
        logging.info("Freeze base net.")
        for p in base_net_parameters(model):
            p.requires_grad = False
        params = [{'params': extra_layers_parameters(model), 'lr': extra_layers_lr},
                  {'params': head_parameters(model)}]
    elif args.freeze_net:
        logging.info("Freeze all the layers except prediction heads.")
        for p in base_net_parameters(model) + extra_layers_parameters(model):
            p.requires_grad = False
        params = [{'params': head_parameters(model)}]
    else:
        params = [{'params': base_net_parameters(model), 'lr': base_net_lr},
                  {'params': extra_layers_parameters(model), 'lr': extra_layers_lr},
                  {'params': head_parameters(model)}]

    timer = time.time()
    if args.resume:
        logging.info(f"Resume from the model {args.resume}")
        load_state(model, args.resume)
    elif args.base_net:
        logging.info(f"Init from base net {args.base_net}")
        load_base_net(model, args.base_net)
    elif args.pretrained_ssd:
        logging.info(f"Init from pretrained ssd {args.pretrained_ssd}")
        load_state(model, args.pretrained_ssd, skip_head=True)
    logging.info(f"Took {time.time() - timer:.2f} seconds to load the model.")
    model.to(device)

    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    logging.info(f"Learning rate: {args.lr}, Base net learning rate: {base_net_lr}, "
                 f"Extra Layers learning rate: {extra_layers_lr}.")
    if args.scheduler == "multi-step":
        logging.info("Uses MultiStepLR scheduler.")
        milestones = [int(v.strip()) for v in args.milestones.split(",") if v.strip()]
        scheduler = MultiStepLR(optimizer, milestones=milestones, gamma=args.gamma)
    else:
        logging.info("Uses CosineAnnealingLR scheduler.")
        scheduler = CosineAnnealingLR(optimizer, args.t_max)

    start_epoch = 0
    logging.info(f"Start training from epoch {start_epoch}.")
    for epoch in range(start_epoch, args.num_epochs):
        train_one_epoch(train_loader, model, optimizer, device, max(1, args.debug_steps), epoch)
        scheduler.step()
        if epoch % max(1, args.validation_epochs) == 0 or epoch == args.num_epochs - 1:
            val_loss, val_regression_loss, val_classification_loss = validate(val_loader, model, device)
            logging.info(
                f"Epoch: {epoch}, "
                f"Validation Loss: {val_loss:.4f}, "
                f"Validation Regression Loss {val_regression_loss:.4f}, "
                f"Validation Classification Loss: {val_classification_loss:.4f}")
            if args.validation_mean_ap:
                predictor = Predictor(model, device=device)
                aps, _ = evaluate(predictor, val_dataset, val_dataset.class_names, batch_size=args.batch_size)
                model.train()
                mean_ap = sum(aps) / len(aps) if aps else 0.0
                logging.info(f"Epoch: {epoch}, Validation Mean Average Precision (mAP): {mean_ap:.4f}")
                for name, ap in zip(val_dataset.class_names[1:], aps):
                    logging.info(f"Epoch: {epoch}, Validation Average Precision {name}: {ap:.4f}")
            model_path = os.path.join(args.checkpoint_folder, f"{args.net}-Epoch-{epoch}-Loss-{val_loss}.pth")
            save_checkpoint(model, model_path)
            logging.info(f"Saved model {model_path}")

    logging.info("Task done, exiting program.")


if __name__ == '__main__':
    main()

"""Write the bundled sample for examples/lpd.yaml into examples/data/.

- data/crpd: a few dozen synthetic street frames with plates, in the CRPD layout and label format.
- data/pretrained/resnet_18.hdf5: a STAND-IN file so the sample runs without NGC access. Against the
  real TAO images use the real weights: `ngc registry model download-version
  nvidia/tao/pretrained_object_detection:resnet18` and point model.pretrained at resnet_18.hdf5.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tlt_pipe.datasets.sample import sample_crpd

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    crpd = args.out / "crpd"
    if not crpd.exists():
        sample_crpd(crpd, args.images, args.seed)
    pretrained = args.out / "pretrained" / "resnet_18.hdf5"
    if not pretrained.exists():
        pretrained.parent.mkdir(parents=True, exist_ok=True)
        pretrained.write_bytes(HDF5_SIGNATURE + b"tltpipe sample stand-in for the NGC resnet18 weights\n")
    print(f"sample data in {args.out}")


if __name__ == "__main__":
    main()

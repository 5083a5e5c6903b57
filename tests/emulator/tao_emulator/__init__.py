"""tltpipe's stand-in for the NVIDIA TAO Toolkit TF1 detection containers.

It runs inside the emulator images built by tests/emulator/build.py and follows
shared/tao-contract.md: same commands, flags, spec schema, file names, console lines and exit
codes as the real containers, with deterministic fake numbers instead of a GPU.
Standard library plus python3-protobuf (and, for RT-DETR and DINO, python3-omegaconf and python3-yaml).
"""

"""NVIDIA's own definitions of the TAO tasks, read as data for tltpipe's conformance tests and emulator.

Nothing here imports NVIDIA's packages. The wheels are fetched with `pip download --no-deps` into a
cache (wheels.py); their spec schemas are read as serialized descriptors with `ast` (protos.py);
TAO Deploy's argument parsers are rebuilt from their own functions, run against argparse alone
(deploy_cli.py); the TF1 task flags come from section 7 of the TAO contract (tf1_flags.py).
"""

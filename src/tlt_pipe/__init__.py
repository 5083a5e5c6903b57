"""tltpipe: NVIDIA TAO Toolkit detection pipelines from one YAML file."""

__version__ = "0.1.0"

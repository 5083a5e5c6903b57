"""tltpipe: NVIDIA TAO Toolkit detection pipelines from one YAML file.

The library (tlt_pipe.api): load_config, plan, run, sweep. They load on first use, so that importing the
package (the command line does) stays cheap.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "load_config", "plan", "run", "sweep"]


def __getattr__(name: str):
    if name in ("load_config", "plan", "run", "sweep"):
        from tlt_pipe import api

        return getattr(api, name)
    raise AttributeError(f"module 'tlt_pipe' has no attribute {name!r}")

from .misc import str2bool

__all__ = ["str2bool"]

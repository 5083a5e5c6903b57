"""Shared code of tltpipe's pytorch-ssd test stand-in (see ../README.md)."""

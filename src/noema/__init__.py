"""Noema: run ComfyUI workflows from chats, a web page and an API, paid by the GPU second."""

__version__ = "0.1.0"

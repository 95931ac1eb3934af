"""user_app: see ../README.md."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("user-app")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

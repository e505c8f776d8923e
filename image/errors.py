"""The one error family of the image builder."""

from __future__ import annotations


class ImageError(ValueError):
    """A build cannot go on; the message says what was found and what to do.

    Raised for bad inputs (base image, binary, output folder) before any work starts, and for a
    tool that failed during the build. The CLI prints the message and exits with status 1.
    """

"""Uploaded images for the Denoise page. The decoding is plain Python and lives in aecore.images;
this module keeps the names the page uses."""

from aecore.images import FORMATS, MAX_PIXELS, ImageRejected, image_from_upload, looks_light

__all__ = ["FORMATS", "MAX_PIXELS", "ImageRejected", "image_from_upload", "looks_light"]

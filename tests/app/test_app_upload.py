"""pages/_upload.py: what the Denoise page does with an uploaded file."""

import io

import pytest
from PIL import Image

from pages._upload import MAX_PIXELS, image_from_upload, looks_light


def png(size, mode="RGB", colour="white") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_any_image_becomes_one_model_input(shape):
    x = image_from_upload(png((300, 200)), shape)
    assert x.shape == (1, *shape)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert looks_light(x)


@pytest.mark.parametrize("data", [b"not an image", png((10, 10))[:40], b""])
def test_files_that_are_not_images_are_refused_with_a_message(data):
    with pytest.raises(ValueError, match="image"):
        image_from_upload(data, (1, 28, 28))


def test_huge_images_are_refused_before_decoding():
    side = int(MAX_PIXELS**0.5) + 10
    with pytest.raises(ValueError, match="limit"):
        image_from_upload(png((side, side), mode="1", colour=0), (1, 28, 28))

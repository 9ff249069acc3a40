"""app_pages/_upload.py: what the Denoise page does with an uploaded file."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from aecore import images
from app_pages import _upload as upload
from app_pages._upload import MAX_PIXELS, image_from_upload, looks_light

SVG = b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'><circle r='4'/></svg>"


def png(size, mode="RGB", colour="white") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="PNG")
    return buf.getvalue()


def drawing_png(size=(300, 200)) -> bytes:
    """A dark stroke drawn on white paper."""
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).line([(120, 40), (170, 160)], fill="black", width=12)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(autouse=True)
def fresh_cache():
    upload._decoded.clear()
    yield
    upload._decoded.clear()


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_any_image_becomes_one_model_input(shape):
    # Changed with issue #11 item 6: this used a blank white page for every shape. Digit models
    # now get their training images' layout (the ink found, cropped, scaled, centred, light on
    # black), so a drawing is used for them and comes back dark (not looks_light); a blank page
    # is refused for them (next test). Colour models keep the central crop of anything.
    data = drawing_png() if shape[0] == 1 else png((300, 200))
    x = image_from_upload(data, shape)
    assert x.shape == (1, *shape)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert looks_light(x) == (shape[0] == 3)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8)])
def test_a_blank_page_is_refused_for_digit_models(shape):
    with pytest.raises(ValueError, match="No drawing was found"):
        image_from_upload(png((300, 200)), shape)


@pytest.mark.parametrize("data", [b"not an image", png((10, 10))[:40], b""])
def test_files_that_are_not_images_are_refused_with_a_message(data):
    with pytest.raises(ValueError, match="image"):
        image_from_upload(data, (1, 28, 28))


def test_huge_images_are_refused_before_decoding():
    side = int(MAX_PIXELS**0.5) + 10
    with pytest.raises(ValueError, match="limit"):
        image_from_upload(png((side, side), mode="1", colour=0), (1, 28, 28))


def test_each_upload_is_decoded_once_across_reruns(monkeypatch):
    calls = []
    real = images.image_from_upload

    def counting(data, shape, layout="crop"):
        calls.append(layout)
        return real(data, shape, layout)

    monkeypatch.setattr(images, "image_from_upload", counting)
    first = image_from_upload(drawing_png(), (1, 28, 28))
    for _ in range(3):  # reruns of the page with the same file
        again = image_from_upload(drawing_png(), (1, 28, 28))
        assert bool((again == first).all())
    assert calls == ["mnist"]
    image_from_upload(drawing_png(), (3, 32, 32))  # another model: decoded for it
    image_from_upload(drawing_png((301, 200)), (1, 28, 28))  # another file
    assert calls == ["mnist", "crop", "mnist"]
    for _ in range(3):  # a refusal is remembered too
        with pytest.raises(ValueError, match="not an image"):
            image_from_upload(SVG, (1, 28, 28))
    assert len(calls) == 4


def test_the_dataset_picks_the_layout():
    assert upload.layout_for((1, 28, 28), "fashion_mnist") == "fashion"
    shirt = Image.new("L", (200, 200), 250)
    ImageDraw.Draw(shirt).rectangle([60, 40, 140, 170], fill=120)
    buf = io.BytesIO()
    shirt.save(buf, format="PNG")
    x = image_from_upload(buf.getvalue(), (1, 28, 28), dataset="fashion_mnist")
    assert 0.4 < float(x.max()) < 0.6  # grey kept, as in Fashion-MNIST (MNIST's would be 1.0)
    rows = np.flatnonzero(x.numpy()[0, 0].any(1))
    assert rows[-1] - rows[0] + 1 == 28  # the long side fills 28
    assert float(image_from_upload(buf.getvalue(), (1, 28, 28)).max()) > 0.95


def test_describe_says_what_happens_to_an_upload():
    assert "20 pixels" in upload.describe((1, 28, 28))
    assert "8x8" in upload.describe((1, 8, 8))
    assert "Fashion-MNIST" in upload.describe((1, 28, 28), "fashion_mnist")
    assert "cropped to the model's 32x32 aspect" in upload.describe((3, 32, 32))


def _uploader_page():
    import streamlit as st

    from app_pages import _upload as upload

    file = upload.uploader("Image", key="dn_upload")
    if file is not None:
        try:
            x = upload.image_from_upload(file.getvalue(), (1, 28, 28))
        except ValueError as err:
            st.error(str(err))
        else:
            st.markdown(f"decoded {tuple(x.shape)}")


def test_an_svg_sent_past_the_browser_is_refused_and_later_reruns_work():
    """Issue #12 item 13: with extensions as the uploader's types, Streamlit refused the name
    `.svg` while restoring the widget, before the script ran, on every later rerun."""
    at = AppTest.from_function(_uploader_page, default_timeout=60)
    at.run()
    assert list(at.file_uploader(key="dn_upload").allowed_type) == list(upload.MIME_TYPES)
    at.file_uploader(key="dn_upload").upload("drawing.svg", SVG, "image/svg+xml")
    for _ in range(3):  # the browser keeps sending the file with every rerun
        at.run()
        assert not at.exception
        assert [e.value for e in at.error] == [
            "That file is not an image this app can read: it is an SVG (vector) drawing; "
            "export it as PNG first. Upload a PNG, JPEG, BMP, GIF or WebP image."
        ]
    at.file_uploader(key="dn_upload").set_value(("digit.png", drawing_png(), "image/png"))
    at.run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["decoded (1, 1, 28, 28)"]
    # A name that says PNG does not make a file one: its content decides.
    at.file_uploader(key="dn_upload").set_value(("digit.png", SVG, "image/png"))
    at.run()
    assert not at.exception and "SVG" in at.error[0].value

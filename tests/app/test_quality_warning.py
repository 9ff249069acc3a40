"""app_pages/_views.metrics_table warns, in words, when a run collapsed or made its input worse, and
stays quiet for a good run (aecore.quality decides)."""

from streamlit.testing.v1 import AppTest


def _two_tables():
    from app_pages import _views

    collapsed = {
        "test_psnr": 9.73,
        "test_psnr_noisy": 9.37,
        "test_psnr_median3": 14.18,
        "test_ssim": 0.24,
        "test_output_std": 0.0001,
        "test_clean_std": 0.19,
    }
    _views.metrics_table(collapsed, "A collapsed run.")
    _views.metrics_table(collapsed | {"test_psnr": 18.7, "test_output_std": 0.15}, "A good run.")


def test_a_collapsed_run_gets_a_warning_and_a_good_one_none():
    at = AppTest.from_function(_two_tables, default_timeout=60).run()
    assert not at.exception
    assert len(at.warning) == 1
    assert "nearly the same image for every input" in at.warning[0].value
    assert "BatchNorm" in at.warning[0].value
    assert len(at.metric) == 6  # both tables drew their three headline numbers

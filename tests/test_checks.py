"""The argument checks shared by the public API (vitok.checks): one line naming the argument."""

from __future__ import annotations

import pytest
import torch

from vitok.checks import check_device, check_int, check_number, check_pair, check_shape, check_tensor, describe


def test_describe_is_one_short_line_for_tensors_and_long_values() -> None:
    assert describe(torch.zeros(2, 3, 64, 64)) == "a float32 tensor of shape (2, 3, 64, 64)"
    assert "\n" not in describe(list(range(1000))) and len(describe(list(range(1000)))) <= 80


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda: check_int("n", True, 1), TypeError, "n must be an int, got True"),
    (lambda: check_int("n", 0, 1), ValueError, "n must be >= 1, got 0"),
    (lambda: check_number("fps", "5"), TypeError, "fps must be a number"),
    (lambda: check_number("fps", float("nan"), 0, low_open=True), ValueError, r"fps must be a finite number > 0"),
    (lambda: check_number("p", 2.0, 0, 1), ValueError, r"p must be a finite number in \[0, 1\], got 2.0"),
    (lambda: check_shape("shape", (1, 8.5, 8), 3), TypeError, "shape must be 3 ints"),
    (lambda: check_shape("shape", (1, -8, 8), 3), ValueError, r"shape must be 3 ints >= 1, got \(1, -8, 8\)"),
    (lambda: check_tensor("x", [1.0], (4,)), TypeError, "x must be a tensor, got"),
    (lambda: check_tensor("x", torch.zeros(3), (4,), layout="(B, C, H, W)"), ValueError,
     r"x must be a \(B, C, H, W\) tensor, got a float32 tensor of shape \(3,\)"),
    (lambda: check_tensor("x", torch.zeros(1, 2, 4, 4), (4,), channels=3), ValueError, "3 channels"),
    (lambda: check_tensor("x", torch.zeros(0, 3), (2,)), ValueError, "x must not be empty"),
    (lambda: check_tensor("x", torch.zeros(2, dtype=torch.int64), floating=True), TypeError, "floating-point"),
    (lambda: check_tensor("x", torch.zeros(2, dtype=torch.complex64)), TypeError, "real-valued"),
    (lambda: check_pair(("x", "y"), torch.zeros(1, 3), torch.zeros(2, 3), (2,)), ValueError, "same shape"),
    (lambda: check_device("device", "tpu"), ValueError, "device must be cpu, cuda, cuda:N, mps or meta, got 'tpu'"),
    (lambda: check_device("device", None), TypeError, "device must be a device name"),
])
def test_checks_raise_one_line_naming_the_argument(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_checks_pass_valid_values_through() -> None:
    x = torch.zeros(1, 3, 4, 4)
    assert check_tensor("x", x, (4, 5), floating=True, channels=3) is x
    assert check_number("p", 1, 0, 1) == 1.0 and check_shape("s", [1, 2, 3], 3) == (1, 2, 3)
    assert check_device("d", "cpu") == torch.device("cpu")

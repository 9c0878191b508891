"""Helpers of the win model page tests: the pages' addresses, a client signed in as one of the
company's users (conftest.py), a page's text, and the model made one that is not offered."""

import html
import re
from typing import Any

from django.test import Client

from loudou.learning.models import WinModel

MODEL = "/analytics/model/"
TRAIN = "/analytics/model/train/"
ACCEPT = "/analytics/model/accept/"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client(company: dict[str, Any], name: str, language: str = "en") -> Client:
    signed_in = Client(HTTP_ACCEPT_LANGUAGE=language)
    signed_in.force_login(company[name])
    return signed_in


def text(body: str) -> str:
    """The page's text with tags removed and spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def not_offered(model: WinModel) -> WinModel:
    """The stored model as training stores one that lost to the learned stage rates (test setup
    only: the numbers are the stored ones, the logistic made to lose)."""
    metrics = model.metrics
    brier = {
        "logistic": metrics["stage_rates"]["brier"] + 0.01,
        "stage_rates": metrics["stage_rates"]["brier"],
        "stage_defaults": metrics["stage_defaults"]["brier"],
    }
    model.offered = False
    model.parameters = {
        **model.parameters,
        "used": "stage_rates",
        "fallback": {"reason": "loses_on_later_deals", "brier": brier},
    }
    model.save()
    return model

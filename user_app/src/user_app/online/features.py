"""Features for a raw payment, from etl_app's featurization service, within a time budget.

A payment gateway sends ``POST /authorize`` only what it knows: the payment (the PaymentRequest
contract). Its point-in-time features (the card's recent payments, the merchant's chargebacks)
come from etl_app's featurization service (``python -m etl_app.online_service``), which owns the
feature definition and reads the source system. user_app never computes a feature itself: there
is one definition, in etl_app, for batch and online alike.

The call is bounded by ``timeout_seconds`` (connecting and reading, no retry: a retry would not
fit in an authorization's budget). Every way of not getting features in time is a
:class:`FeaturesUnavailable` with a short ``reason`` (``timeout``, ``unreachable``,
``featurization_error``, ``bad_answer``): the service then answers with its documented fallback.
A payment the featurization service refuses (it breaks the PaymentRequest contract, or source
screening rejects it) is the gateway's error, a :class:`PaymentRefused` carrying the service's
explanation, not a fallback.

The answer is decoded to TransactionInstance rows exactly: floats travel as their shortest
round-tripping text, missing values as null, ``event_time`` as ISO 8601 naive UTC with
microseconds, so the frame the model scores holds the very bits etl_app computed.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pandas as pd
import requests


class FeaturesUnavailable(RuntimeError):
    """No features in time; ``reason`` names why in one word (it is logged and counted)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class PaymentRefused(ValueError):
    """The featurization service refused the payment itself (HTTP 422): the caller's error."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", "payment refused by the featurization service"))
        self.body = body


def instances_frame(instances: list[dict[str, Any]]) -> pd.DataFrame:
    """The featurization service's ``instances`` as a frame (event_time parsed, naive UTC)."""
    frame = pd.DataFrame.from_records(instances)
    frame["event_time"] = pd.to_datetime(frame["event_time"], format="ISO8601")
    return frame


class FeatureClient:
    """``features(payment)``: the TransactionInstance row of one payment, or an exception.

    Args:
        url: the featurization service's base URL (``http://127.0.0.1:8100``).
        timeout_seconds: the budget for connecting and for reading the answer.
    """

    def __init__(self, url: str, timeout_seconds: float) -> None:
        self.url = url.rstrip("/") + "/features"
        self.timeout = (timeout_seconds, timeout_seconds)
        self._local = threading.local()  # one pooled session per thread

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def features(self, payment: dict[str, Any]) -> pd.DataFrame:
        body = json.dumps({"payments": [payment]})
        try:
            answer = self._session().post(
                self.url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except requests.Timeout as exc:
            raise FeaturesUnavailable(
                "timeout", f"{self.url} did not answer in time ({exc})"
            ) from None
        except requests.RequestException as exc:
            raise FeaturesUnavailable("unreachable", f"{self.url}: {exc}") from None
        if answer.status_code == 422:
            raise PaymentRefused(_json(answer) or {"error": answer.text[:500]})
        if answer.status_code != 200:
            raise FeaturesUnavailable(
                "featurization_error",
                f"{self.url} answered {answer.status_code}: {answer.text[:500]}",
            )
        decoded = _json(answer)
        instances = decoded.get("instances") if decoded else None
        if not isinstance(instances, list) or len(instances) != 1:
            raise FeaturesUnavailable(
                "bad_answer", f"{self.url} answered without one instance: {answer.text[:500]}"
            )
        try:
            return instances_frame(instances)
        except (KeyError, ValueError, TypeError) as exc:
            raise FeaturesUnavailable("bad_answer", f"{self.url}: {exc}") from None


def _json(answer: requests.Response) -> dict[str, Any] | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None

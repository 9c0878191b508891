"""Request ids and structured logs: one line per request, every log line tagged with its request.

A request id comes from the `X-Request-ID` header when a proxy in front set a sane one (so the
proxy's log and ours share it), otherwise it is made here; it goes back in the response's
`X-Request-ID` header and onto every log record written while the request runs, so a user's
"it failed at 10:42" can be found in the log from the id shown on the error page.
"""

import contextvars
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

request_logger = logging.getLogger("loudou.request")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("loudou_request_id", default="-")
# What a proxy may hand us: short, no spaces or quotes (it is echoed in a header and logged).
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def current_request_id() -> str:
    """The id of the request being served in this thread or task ("-" outside a request)."""
    return _current.get()


def _request_id(request: HttpRequest) -> str:
    offered = request.headers.get("X-Request-ID", "")
    return offered if _ACCEPTABLE.fullmatch(offered) else uuid.uuid4().hex


class RequestLogMiddleware:
    """Give each request an id and log one line when it ends: method, path, status, duration,
    user. Placed first, so the duration covers every other middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = _current.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response.headers["X-Request-ID"] = request_id
            user = getattr(request, "user", None)
            user_id = user.pk if user is not None and user.is_authenticated else None
            level = logging.ERROR if response.status_code >= 500 else logging.INFO
            request_logger.log(
                level,
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "user_id": user_id,
                },
            )
            return response
        finally:
            _current.reset(token)


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record (`%(request_id)s` in text logs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


# Fields of a LogRecord that are logging's own bookkeeping, not the caller's `extra`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request id, the
    caller's `extra` fields and, for errors, the traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", current_request_id()),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in document:
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False, default=str)

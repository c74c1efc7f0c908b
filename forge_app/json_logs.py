"""`FORGE_APP_LOG_FORMAT=json`: one JSON object per log line, for log shippers.

Each line has time, level, logger, message, the bound context (delivery, scan_id,
job_id, job_kind) and, for an exception, its traceback. The message is the one the
redacting filter already cleaned; the traceback is redacted here, so no secret leaks.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from forge_app.log_context import current


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        from forge_app.logging_setup import redact

        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        line.update(current())
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def use_json_logs() -> None:
    """Switch every root and uvicorn handler to JSON lines."""
    formatter = JsonFormatter()
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(formatter)

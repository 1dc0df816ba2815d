"""Exception reporting for the loop: the exception handler API and its
default handler, with asyncio's context keys and log format.

Background errors (a callback raising, a transport's fatal error) go only to
``call_exception_handler``; nothing is raised into unrelated code. On Python
3.12+ a custom handler runs in the context of the failing task, future or
handle, as asyncio does. Must not import the loop module.
"""

from __future__ import annotations

import asyncio
import asyncio.events  # mypyc: import the module of the Python base class
import logging
import sys
import traceback
from typing import Any

from ._handles import format_callback_source
from ._native import mypyc_attr

logger = logging.getLogger("asyncio")

_HANDLER_IN_CONTEXT = sys.version_info >= (3, 12)


@mypyc_attr(allow_interpreted_subclasses=True)
class ErrorsPart(asyncio.AbstractEventLoop):
    """The bottom of the loop's chain of parts (see ``tideloop._loop``)."""

    # Owned by LoopCore, the part above, and read here.
    _current_handle: Any
    _debug: bool

    def __init__(self) -> None:
        self._exception_handler: Any = None

    def _report_callback_error(self, handle: Any, exc: BaseException) -> None:
        cb = format_callback_source(
            handle._callback,  # type: ignore[attr-defined]
            handle._args,  # type: ignore[attr-defined]
            self._debug,
        )
        context: dict[str, Any] = {
            "message": f"Exception in callback {cb}",
            "exception": exc,
            "handle": handle,
        }
        tb = handle._source_traceback  # type: ignore[attr-defined]
        if tb:
            context["source_traceback"] = tb
        self.call_exception_handler(context)

    # -- error handling ----------------------------------------------------------------

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        message = context.get("message")
        if not message:
            message = "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        current = self._current_handle
        if (
            "source_traceback" not in context and current is not None and current._source_traceback  # type: ignore[attr-defined]
        ):
            context["handle_traceback"] = current._source_traceback  # type: ignore[attr-defined]
        log_lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n" + tb.rstrip()
            elif key == "handle_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n" + tb.rstrip()
            else:
                value = repr(value)
            log_lines.append(f"{key}: {value}")
        logger.error("\n".join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error("Exception in default exception handler", exc_info=True)
            return
        try:
            ctx = _handler_context(context) if _HANDLER_IN_CONTEXT else None
            if ctx is not None:
                ctx.run(self._exception_handler, self, context)
            else:
                self._exception_handler(self, context)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            try:
                self.default_exception_handler(
                    {
                        "message": "Unhandled error in exception handler",
                        "exception": exc,
                        "context": context,
                    }
                )
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                logger.error(
                    "Exception in default exception handler "
                    "while handling an unexpected error "
                    "in custom exception handler",
                    exc_info=True,
                )


def _handler_context(context: dict[str, Any]) -> Any:
    """Python 3.12+ runs a custom exception handler in the context of the
    failing task, future or handle."""
    thing = context.get("task")
    if thing is None:
        thing = context.get("future")
    if thing is None:
        thing = context.get("handle")
    ctx = thing.get_context() if thing is not None and hasattr(thing, "get_context") else None
    return ctx if ctx is not None and hasattr(ctx, "run") else None

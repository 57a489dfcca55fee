"""Validation of the stream request's query parameters, shared by both transports.

Pure functions on a mapping of strings, so SSE and WebSocket reject exactly the
same requests with exactly the same explanation (PROTOCOL.md section 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .datasets import ALL, DATASET_NAMES

MAX_QUESTION = 2000
DEFAULT_MODEL = "x-ai/grok-4-fast:free"


@dataclass(frozen=True)
class StreamRequest:
    """A valid request: the question (stripped), the dataset and the model id."""

    question: str
    dataset: str = ALL
    model: str = DEFAULT_MODEL


@dataclass(frozen=True)
class Rejection:
    """Why a request is refused: which parameter and a sentence for people."""

    param: str
    message: str
    error: str = "invalid_request"

    def body(self) -> dict[str, str]:
        """The JSON body of an SSE 422 answer."""
        return {"error": self.error, "param": self.param, "message": self.message}

    def ws_event(self) -> dict[str, str]:
        """The lone error event sent on a WebSocket before closing 1008."""
        return {"type": "error", "code": self.error, "param": self.param, "message": self.message}


def _safe_text(value: str) -> str:
    """Replace lone surrogates (never valid UTF-8) so the value can be sent back."""
    return value.encode("utf-8", "replace").decode("utf-8")


def parse_request(query: Mapping[str, str]) -> StreamRequest | Rejection:
    """Check ``question``, ``dataset`` and ``model``; other parameters are ignored."""
    raw_question = query.get("question")
    if raw_question is None:
        return Rejection("question", "the 'question' parameter is required")
    question = _safe_text(raw_question).strip()
    if not question:
        return Rejection("question", "'question' must not be empty or white space only")
    if len(question) > MAX_QUESTION:
        return Rejection(
            "question",
            f"'question' is {len(question)} characters long; at most {MAX_QUESTION} are allowed",
        )
    dataset = query.get("dataset")
    if dataset is None:
        dataset = ALL
    elif dataset not in DATASET_NAMES:
        shown = _safe_text(dataset[:60]) + ("..." if len(dataset) > 60 else "")
        return Rejection(
            "dataset", f"unknown dataset {shown!r}; known: {', '.join(DATASET_NAMES)}"
        )
    model = query.get("model")
    model = DEFAULT_MODEL if not model else _safe_text(model)
    return StreamRequest(question=question, dataset=dataset, model=model)

"""Message format of the WebSocket streams.

Every message is a JSON object `{"type": ..., "payload": ...}`:

- client -> server: `{route}.subscribe` and `{route}.unsubscribe`, with the route's
  parameters as payload;
- server -> client: `{route}.subscribe.response` and `{route}.unsubscribe.response` with
  a SubscriptionResponse, `{route}.update` with `{"topic": ..., "payload": ...}`, and
  `error` with an ErrorPayload for a message that can't be handled.

A topic is the route name, a colon, and the validated parameters as compact JSON with
sorted keys, e.g. `bars:{"resolution":"1","symbol":"AAPL"}`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
ACTIONS = (SUBSCRIBE, UNSUBSCRIBE)
ERROR_TYPE = "error"


class SubscriptionResponse(BaseModel):
    """Response to a subscribe or unsubscribe request."""

    status: Literal["ok", "error"]
    message: str = Field(description="What happened, or why the request was rejected.")
    topic: str | None = Field(description="Topic of the request; null when the parameters are invalid.")


class ErrorPayload(BaseModel):
    """Reason a client message could not be handled."""

    message: str


def make_topic(route: str, params: BaseModel) -> str:
    """Return the topic name for a route and its validated parameters."""
    encoded = json.dumps(params.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    return f"{route}:{encoded}"


def encode_message(message_type: str, payload: BaseModel | dict[str, Any]) -> str:
    """Serialize a `{type, payload}` message to JSON text."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    return json.dumps({"type": message_type, "payload": payload}, separators=(",", ":"))


def encode_update(route: str, topic: str, update: BaseModel) -> str:
    """Serialize a `{route}.update` message for a topic."""
    return encode_message(f"{route}.update", {"topic": topic, "payload": update.model_dump(mode="json")})


def encode_error(message: str) -> str:
    """Serialize an `error` message."""
    return encode_message(ERROR_TYPE, ErrorPayload(message=message))


def describe_validation_error(error: ValidationError) -> str:
    """Return a one-line summary of a ValidationError that names each invalid field."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "payload"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)

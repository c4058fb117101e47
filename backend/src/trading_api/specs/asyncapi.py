"""AsyncAPI 3.0 document of a module's WebSocket streams."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from trading_api import __version__
from trading_api.modules.base import Module
from trading_api.ws.endpoint import STREAM_PATH
from trading_api.ws.protocol import ERROR_TYPE, ErrorPayload, SubscriptionResponse

ASYNCAPI_VERSION = "3.0.0"
SCHEMA_REF = "#/components/schemas/{model}"
CHANNEL_ID = "stream"


def _camel(*words: str) -> str:
    return words[0] + "".join(word[:1].upper() + word[1:] for word in words[1:])


def _envelope(message_type: str, payload_schema: dict[str, Any]) -> dict[str, Any]:
    """Return the schema of a `{type, payload}` message with a fixed type."""
    return {
        "type": "object",
        "required": ["type", "payload"],
        "properties": {"type": {"type": "string", "const": message_type}, "payload": payload_schema},
        "additionalProperties": False,
    }


def _model_schemas(models: list[type[BaseModel]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Return a $ref schema per model name and the component schemas they point to."""
    pairs = [(model, "serialization") for model in models]
    refs, definitions = models_json_schema(pairs, ref_template=SCHEMA_REF)
    by_name = {model.__name__: refs[(model, "serialization")] for model in models}
    return by_name, definitions.get("$defs", {})


def build_asyncapi(module: Module) -> dict[str, Any]:
    """Return the AsyncAPI 3.0 document of a module's WebSocket channel.

    The channel has, per route, the subscribe and unsubscribe requests that the server
    receives, their responses, and the updates that the server sends.
    """
    models: list[type[BaseModel]] = [SubscriptionResponse, ErrorPayload]
    for route in module.streams:
        for model in (route.params_model, route.update_model):
            if model not in models:
                models.append(model)
    refs, component_schemas = _model_schemas(models)

    channel_ref = {"$ref": f"#/channels/{CHANNEL_ID}"}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add_message(message_id: str, message_type: str, summary: str, payload: dict[str, Any]) -> dict[str, str]:
        messages[message_id] = {
            "name": message_type,
            "title": message_type,
            "summary": summary,
            "payload": _envelope(message_type, payload),
        }
        return {"$ref": f"#/channels/{CHANNEL_ID}/messages/{message_id}"}

    for route in module.streams:
        params = refs[route.params_model.__name__]
        response = refs[SubscriptionResponse.__name__]
        for action in ("subscribe", "unsubscribe"):
            request_type = f"{route.name}.{action}"
            request_ref = add_message(
                _camel(route.name, action),
                request_type,
                f"{action.capitalize()} to {route.name}: {route.summary}",
                params,
            )
            response_ref = add_message(
                _camel(route.name, action, "response"),
                f"{request_type}.response",
                f"Answer to {request_type}.",
                response,
            )
            operations[_camel(action, route.name)] = {
                "action": "receive",
                "channel": channel_ref,
                "summary": f"Client sends {request_type}; the server answers {request_type}.response.",
                "messages": [request_ref],
                "reply": {"channel": channel_ref, "messages": [response_ref]},
            }

        update_payload = {
            "type": "object",
            "required": ["topic", "payload"],
            "properties": {
                "topic": {
                    "type": "string",
                    "description": "Route name, a colon and the parameters as sorted compact JSON.",
                },
                "payload": refs[route.update_model.__name__],
            },
            "additionalProperties": False,
        }
        update_ref = add_message(_camel(route.name, "update"), f"{route.name}.update", route.summary, update_payload)
        operations[_camel("send", route.name, "update")] = {
            "action": "send",
            "channel": channel_ref,
            "summary": f"Server sends {route.name}.update to the subscribers of a topic.",
            "messages": [update_ref],
        }

    error_ref = add_message(
        ERROR_TYPE,
        ERROR_TYPE,
        "Reply to a message that is not valid JSON or has an unknown type.",
        refs[ErrorPayload.__name__],
    )
    operations["sendError"] = {
        "action": "send",
        "channel": channel_ref,
        "summary": "Server sends error when it can't handle a client message; the connection stays open.",
        "messages": [error_ref],
    }

    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"{module.title} streams",
            "version": __version__,
            "description": (
                f"{module.description} Messages are JSON objects {{type, payload}}. "
                "A topic is the route name, a colon and the parameters as compact JSON with sorted keys."
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            CHANNEL_ID: {
                "address": f"{module.prefix}{STREAM_PATH}",
                "title": f"{module.title} WebSocket",
                "messages": messages,
            }
        },
        "operations": operations,
        "components": {"schemas": component_schemas},
    }

"""WebSocket streaming shared by the modules: protocol, topics, producers and client queues.

A module declares its routes as StreamRoute objects and serves them through one StreamHub
at `{module prefix}/ws`. See `protocol` for the message format.
"""

from trading_api.ws.client import ClientConnection, ClientState
from trading_api.ws.endpoint import add_stream_endpoint, serve_client
from trading_api.ws.hub import StreamHub, StreamStats
from trading_api.ws.protocol import ErrorPayload, SubscriptionResponse, make_topic
from trading_api.ws.route import Emit, StreamRoute, bind_service, wait_until_cancelled

__all__ = [
    "ClientConnection",
    "ClientState",
    "Emit",
    "ErrorPayload",
    "StreamHub",
    "StreamRoute",
    "StreamStats",
    "SubscriptionResponse",
    "add_stream_endpoint",
    "bind_service",
    "make_topic",
    "serve_client",
    "wait_until_cancelled",
]

"""Errors shared across layers that carry no Kafka error code."""

from __future__ import annotations


class ControllerMovedError(Exception):
    """The controller epoch moved (another broker was elected): the controller that
    saw this must resign; its write was not applied."""


class MetadataUnavailableError(Exception):
    """The metadata store (ZooKeeper) cannot be reached or did not answer in time."""

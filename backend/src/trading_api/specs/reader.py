"""Reading the merged OpenAPI document that the servers write, for the gateway's docs."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class OpenAPIFileReader:
    """Reader of an openapi.json file that parses it again only when the file changes.

    A change is a new inode, mtime or size. The spec writers replace the file with a new one,
    which always gives a new inode.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # (device, inode, mtime in ns, size) of the file last parsed, and its document, which
        # is None when the file was not a JSON object.
        self._version: tuple[int, int, int, int] | None = None
        self._document: dict[str, Any] | None = None
        # The last problem logged, so that each request on a bad file does not log it again.
        self._logged_problem: str | None = None

    def read(self) -> dict[str, Any] | None:
        """Return the document in the file, or None when the file is missing, unreadable or not a JSON object."""
        try:
            with open(self.path, "rb") as handle:
                # fstat and read use the same open file, so a writer that replaces the file in
                # between can't pair one file's version with another file's content.
                status = os.fstat(handle.fileno())
                version = (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)
                if version != self._version:
                    self._document = self._parse(handle.read())
                    self._version = version
        except FileNotFoundError:
            self._log_problem("not found")
            return None
        except OSError as exc:
            self._log_problem(f"cannot be read ({exc.strerror or exc})")
            return None

        if self._document is not None:
            self._logged_problem = None
        return self._document

    def _parse(self, data: bytes) -> dict[str, Any] | None:
        try:
            document = json.loads(data)
        except ValueError as exc:
            # json.JSONDecodeError and UnicodeDecodeError are both ValueErrors.
            self._log_problem(f"is not valid JSON ({exc})")
            return None
        if not isinstance(document, dict):
            self._log_problem("is not a JSON object")
            return None
        return document

    def _log_problem(self, problem: str) -> None:
        if problem == self._logged_problem:
            return
        self._logged_problem = problem
        logger.warning("%s %s; serving the OpenAPI document built in memory instead", self.path, problem)

"""The environment snapshot's package list: the same names and versions importlib.metadata's email
parser reads, taken from the head of each metadata file (issue 16: the parser took the first run's
collector 60-85 ms of GIL while the caller's first steps waited)."""

from __future__ import annotations

import email.parser
import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from contexta.capture import _environment


def _parsed(distribution: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    return distribution.metadata["Name"], distribution.version


def test_every_installed_package_gets_the_name_and_version_the_email_parser_reads() -> None:
    distributions = list(importlib.metadata.distributions())
    assert len(distributions) > 20  # the test environment: enough real metadata files to compare
    for distribution in distributions:
        assert _environment._name_and_version(distribution) == _parsed(distribution), distribution._path  # type: ignore[attr-defined]


def test_the_snapshot_lists_the_installed_packages_by_lowercase_name() -> None:
    expected = {}
    for distribution in importlib.metadata.distributions():
        name, version = _parsed(distribution)
        if name:
            expected[name.lower()] = version
    packages = dict(_environment._process_fields.__wrapped__())["packages"]
    assert packages == dict(sorted(expected.items()))
    assert packages["pytest"] == pytest.__version__


HEADERS = (
    "Metadata-Version: 2.1\r\n"
    "Summary: a summary folded\r\n"
    "  Name: not-a-header (a continuation line)\r\n"
    "NAME: Real-Name\r\n"
    "name: second-name-is-ignored\r\n"
    "Version:   1.2.3  \r\n"
    "\r\n"
    "Name: in-the-description\r\n"
)


@pytest.mark.parametrize("text", [HEADERS, HEADERS.replace("\r\n", "\n")])
def test_headers_are_read_as_the_email_parser_reads_them(text: str) -> None:
    message = email.parser.Parser().parsestr(text)
    assert _environment._headers(text) == ("Real-Name", "1.2.3")
    assert (message["Name"], message["Version"].strip()) == ("Real-Name", "1.2.3")


def test_headers_end_at_the_first_empty_line() -> None:
    assert _environment._headers("Metadata-Version: 2.1\n\nName: body\nVersion: 9\n") == (None, None)
    assert _environment._headers("") == (None, None)


class _Distribution(importlib.metadata.Distribution):
    """A distribution whose metadata lives in files of a directory (or nowhere)."""

    def __init__(self, directory: Path):
        self._directory = directory

    def read_text(self, filename: str) -> str | None:
        path = self._directory / filename
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def locate_file(self, path: Any) -> Path:
        return self._directory / str(path)


def test_pkg_info_is_read_when_there_is_no_metadata_file(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 1.0\nName: old-style\nVersion: 0.9\n\n")
    assert _environment._name_and_version(_Distribution(tmp_path)) == ("old-style", "0.9")


def test_a_distribution_without_either_file_still_goes_through_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # importlib.metadata's last resort: read_text("") (an egg-info that is itself a file)
    (tmp_path / "egg-info").write_text("Metadata-Version: 1.0\nName: egg\nVersion: 0.1\n\n")
    distribution = _Distribution(tmp_path)
    monkeypatch.setattr(
        distribution, "read_text", lambda name: (tmp_path / "egg-info").read_text() if name == "" else None
    )
    assert _environment._name_and_version(distribution) == ("egg", "0.1")


def test_listing_packages_with_metadata_files_never_runs_the_email_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[str] = []
    original = email.parser.Parser.parsestr

    def counting(self: email.parser.Parser, text: str, headersonly: bool = False) -> Any:
        parsed.append(text[:40])
        return original(self, text, headersonly)

    monkeypatch.setattr(email.parser.Parser, "parsestr", counting)
    with_files = [
        distribution
        for distribution in importlib.metadata.distributions()
        if distribution.read_text("METADATA") or distribution.read_text("PKG-INFO")
    ]
    assert with_files
    for distribution in with_files:
        _environment._name_and_version(distribution)
    assert parsed == []

"""A small JUnit XML writer shared by reporting commands (``check``, and any report that maps to
test suites and cases). The document is the common subset CI tools read (Jenkins, GitLab,
GitHub test reporters, ``junitparser``): ``testsuites`` > ``testsuite`` > ``testcase`` with at
most one of ``failure`` / ``skipped``, plus ``system-out``; counts and times are filled in."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


@dataclass
class Case:
    name: str
    classname: str
    seconds: float = 0.0
    failure: str | None = None  # the failure's one-line message (None: passed)
    failure_type: str = "failure"
    failure_text: str = ""
    skipped: str | None = None  # why it was skipped (None: it ran)
    output: str = ""  # system-out: evidence, warnings
    file: str | None = None


@dataclass
class Suite:
    name: str
    cases: list[Case] = field(default_factory=list)
    timestamp: datetime.datetime | None = None
    hostname: str | None = None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(c.failure is not None for c in self.cases)

    @property
    def skipped(self) -> int:
        return sum(c.failure is None and c.skipped is not None for c in self.cases)

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.cases)


def render(suites: list[Suite], name: str, *, seconds: float | None = None) -> str:
    """The JUnit XML document (UTF-8, indented). ``seconds``: the run's wall time, when the
    cases ran concurrently (else the sum of the cases)."""
    from xml.etree import ElementTree as ET

    root = ET.Element("testsuites", name=name)
    for suite in suites:
        node = ET.SubElement(root, "testsuite", name=suite.name, tests=str(len(suite.cases)),
                             failures=str(suite.failures), errors="0",
                             skipped=str(suite.skipped), time=_secs(suite.seconds))
        if suite.timestamp is not None:
            node.set("timestamp", suite.timestamp.strftime("%Y-%m-%dT%H:%M:%S"))
        if suite.hostname:
            node.set("hostname", suite.hostname)
        if suite.properties:
            props = ET.SubElement(node, "properties")
            for key, value in suite.properties.items():
                ET.SubElement(props, "property", name=key, value=_clean(value))
        for case in suite.cases:
            el = ET.SubElement(node, "testcase", name=case.name, classname=case.classname,
                               time=_secs(case.seconds))
            if case.file:
                el.set("file", case.file)
            if case.failure is not None:
                fail = ET.SubElement(el, "failure", message=_clean(case.failure),
                                     type=case.failure_type)
                fail.text = _clean(case.failure_text or case.failure)
            elif case.skipped is not None:
                ET.SubElement(el, "skipped", message=_clean(case.skipped))
            if case.output:
                ET.SubElement(el, "system-out").text = _clean(case.output)
    root.set("tests", str(sum(len(s.cases) for s in suites)))
    root.set("failures", str(sum(s.failures for s in suites)))
    root.set("errors", "0")
    root.set("skipped", str(sum(s.skipped for s in suites)))
    root.set("time", _secs(seconds if seconds is not None else sum(s.seconds for s in suites)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


def _secs(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _clean(text: str) -> str:
    """XML 1.0 cannot carry most control characters (a log line may): drop them."""
    return "".join(ch for ch in str(text) if ch in "\t\n\r" or ord(ch) >= 0x20)

"""A contract run as JUnit XML (`--junit-xml`), for CI systems that show test reports.

One `<testsuite>` per suite (openapi, lifecycle, media); in it one `<testcase>` per endpoint, failed once per
broken rule (`<failure type="<rule>">`), plus a `<testcase name="(run)">` carrying the suite's errors and
skips. Schema: https://github.com/testmoapp/junitxml.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

from fal_emulator.contracts.report import Report, SuiteResult, Violation


def junit_xml(report: Report) -> ElementTree.ElementTree:
    root = ElementTree.Element("testsuites", name=f"fal contract kit: {report.target}")
    for suite in report.suites:
        root.append(_suite(suite, report))
    failures = sum(int(element.get("failures", "0")) for element in root)
    root.set("tests", str(sum(int(element.get("tests", "0")) for element in root)))
    root.set("failures", str(failures))
    root.set("time", f"{report.seconds:.3f}")
    return ElementTree.ElementTree(root)


def write_junit_xml(report: Report, path: Path) -> None:
    """Write the report to `path` (its folder must exist). Raises OSError when it cannot."""
    tree = junit_xml(report)
    ElementTree.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _suite(suite: SuiteResult, report: Report) -> ElementTree.Element:
    element = ElementTree.Element("testsuite", name=suite.name, time=f"{suite.seconds:.3f}")
    properties = {"seed": str(report.seed), "profile": report.profile, "cases": str(suite.cases)}
    properties.update({f"cases-{phase}": str(count) for phase, count in suite.phases.items()})
    element.append(_properties(properties))
    by_endpoint: dict[str, list[Violation]] = {endpoint: [] for endpoint in report.endpoints}
    unplaced: list[Violation] = []
    for violation in suite.violations:
        by_endpoint.get(violation.endpoint, unplaced).append(violation)
    failures = 0
    for endpoint, violations in [*by_endpoint.items(), ("(run)", unplaced)]:
        case = ElementTree.SubElement(element, "testcase", classname=f"contracts.{suite.name}", name=endpoint)
        for violation in violations:
            failure = ElementTree.SubElement(case, "failure", type=violation.rule, message=violation.message[:500])
            failure.text = violation.render()
            failures += 1
        if endpoint == "(run)":
            for error in suite.errors:
                ElementTree.SubElement(case, "error", message=error.splitlines()[0][:500]).text = error
            for reason in suite.skipped:
                ElementTree.SubElement(case, "system-out").text = f"skipped: {reason}"
    element.set("tests", str(len(by_endpoint) + 1))
    element.set("failures", str(failures))
    element.set("errors", str(len(suite.errors)))
    return element


def _properties(values: dict[str, str]) -> ElementTree.Element:
    element = ElementTree.Element("properties")
    for name, value in values.items():
        ElementTree.SubElement(element, "property", name=name, value=value)
    return element

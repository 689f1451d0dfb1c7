"""`secret-origin check`: the offline CI check (docs/design.md#checks).

Inputs are the catalog, any number of Helm values files (tagged with an environment) and directories
of rendered manifests; the output is linter-style text, JSON or SARIF. Exit 1 when any error-level
rule fires, 0 otherwise (the runner has already exited 2 for an invalid catalog).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobs.checks import rules
from jobs.checks.eso_rules import check_manifests
from jobs.checks.manifests import load_manifests
from jobs.checks.rules import Finding, Level
from jobs.checks.sarif import render_sarif
from jobs.checks.yamlsrc import iter_scalars, read_text
from jobs.core.catalog import Catalog, CatalogError, load_catalog
from jobs.core.errors import ConfigError
from jobs.core.logs import register_secrets
from jobs.core.model import CommandOutput, ExitCode


@dataclass(frozen=True)
class ValuesFile:
    environment: str
    path: Path

    @property
    def production(self) -> bool:
        return rules.is_production_tag(self.environment)


@dataclass(frozen=True)
class CheckOptions:
    values: tuple[str, ...] = ()  # [ENV=]FILE
    manifests: tuple[Path, ...] = ()
    fixtures_from: tuple[Path, ...] = ()
    placeholder_patterns: tuple[str, ...] = ()
    builtin_placeholders: bool = True
    format: str = "text"


def parse_values_argument(text: str, default_environment: str) -> ValuesFile:
    environment, sep, path = text.partition("=")
    if sep and environment and "/" not in environment and not Path(text).exists():
        return ValuesFile(environment, Path(path))
    return ValuesFile(default_environment, Path(text))


def _other_catalogs(paths: Sequence[Path]) -> list[Catalog]:
    catalogs = []
    for path in paths:
        try:
            catalogs.append(load_catalog(path))
        except CatalogError as exc:
            raise ConfigError(str(exc)) from None
    return catalogs


def run_check(catalog: Catalog, options: CheckOptions) -> list[Finding]:
    """Every finding of every rule, in a stable order."""
    catalogs = [catalog, *_other_catalogs(options.fixtures_from)]
    fixtures = rules.known_fixtures(catalogs)
    register_secrets(f.value for f in fixtures)  # defence in depth: no output can carry one
    patterns = rules.placeholders(options.placeholder_patterns, builtin=options.builtin_placeholders)

    findings: list[Finding] = []
    findings.extend(rules.check_classification(catalog))
    findings.extend(rules.check_production_catalog(catalog))
    for values in (parse_values_argument(v, catalog.environment) for v in options.values):
        text = read_text(values.path)
        scalars = list(iter_scalars(text, str(values.path)))
        if values.production:
            findings.extend(rules.check_production_values(str(values.path), scalars, fixtures, patterns))
    if options.manifests:
        findings.extend(check_manifests(catalog, load_manifests(options.manifests)))
    return sorted(set(findings), key=lambda f: (f.file, f.line, f.rule.id, f.message))


def render_text(findings: Sequence[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(
            f"{f.file}:{f.line}: {f.rule.id} {f.message}" + (" (warning)" if f.level is Level.WARNING else "")
        )
        lines.append(f"    fix: {f.rule.fix}")
    errors = sum(f.level is Level.ERROR for f in findings)
    lines.append(f"secret-origin check: {errors} error(s), {len(findings) - errors} warning(s)")
    return "\n".join(lines)


def render_json(findings: Sequence[Finding], exit_code: int) -> str:
    payload = {
        "findings": [
            {
                "rule": f.rule.id,
                "name": f.rule.name,
                "level": f.level.value,
                "file": f.file,
                "line": f.line,
                "message": f.message,
                "fix": f.rule.fix,
            }
            for f in findings
        ],
        "errors": sum(f.level is Level.ERROR for f in findings),
        "warnings": sum(f.level is Level.WARNING for f in findings),
        "exit_code": exit_code,
    }
    return json.dumps(payload, indent=2)


def execute(catalog: Catalog, options: CheckOptions) -> CommandOutput:
    findings = run_check(catalog, options)
    failed = any(f.level is Level.ERROR for f in findings)
    exit_code = int(ExitCode.ENTRY_FAILED if failed else ExitCode.CONVERGED)
    if options.format == "json":
        text = render_json(findings, exit_code)
    elif options.format == "sarif":
        text = render_sarif(findings, Path.cwd())
    else:
        text = render_text(findings)
    return CommandOutput(text, exit_code)

"""Auditing a run for what running it again would need: the code, the data, the environment, the
configuration and the artifacts it registered, each checked against what was captured.

A check says `unknown` rather than guessing when the capture does not record the fact (the
environment snapshot records git HEAD, not whether the tree had uncommitted changes), and `missing` only
for something captured as absent or no longer true (an artifact file gone or changed since it was
registered, which is found by hashing it again with BLAKE3).
"""

from __future__ import annotations

from contexta.contract import ArtifactManifest
from contexta.contract._verification import verify_manifest
from contexta.query._fetch import fetch_artifacts, fetch_environment, fetch_runs
from contexta.query._lineage_models import AuditCheck, ReproducibilityAudit
from contexta.query._models import ArtifactRecord, EnvironmentRecord, RunRecord
from contexta.query._reading import reading
from contexta.query._resolve import find_run
from contexta.store import StoreDatabase

__all__ = ["audit_reproducibility"]

# verify_manifest's outcomes, as what they mean for running the run again.
_VERIFICATION_DETAIL = {
    "verified": ("ok", "the file is still the one registered (BLAKE3 digest and size match)"),
    "missing": ("missing", "the registered file is gone"),
    "size_mismatch": ("missing", "the file changed since it was registered (its size differs)"),
    "hash_mismatch": ("missing", "the file changed since it was registered (its BLAKE3 digest differs)"),
    "unverifiable": ("unknown", "it was registered without a digest, so its content cannot be checked"),
}


def _code_revision(run: RunRecord, environment: EnvironmentRecord | None) -> AuditCheck:
    if run.code_revision:
        return AuditCheck("code_revision", "ok", f"given to the run: {run.code_revision}")
    if environment is not None and environment.git_revision:
        return AuditCheck("code_revision", "ok", f"git HEAD when it ran: {environment.git_revision}")
    return AuditCheck(
        "code_revision",
        "missing",
        "no code revision: pass code_revision= to ctx.run(...), or run it inside a git checkout",
    )


def _git_tree(environment: EnvironmentRecord | None) -> AuditCheck:
    # Capture records git HEAD only (capture/_environment.py runs `git rev-parse HEAD`), never
    # `git status`: whether the tree was clean is not known, and is not guessed.
    where = "" if environment is not None and environment.git_revision else "; no git checkout was recorded"
    return AuditCheck(
        "git_tree_clean",
        "unknown",
        f"the environment snapshot does not record whether the git tree had uncommitted changes{where}",
    )


def _dataset(run: RunRecord) -> AuditCheck:
    if run.dataset_ref:
        return AuditCheck("dataset_ref", "ok", run.dataset_ref)
    return AuditCheck("dataset_ref", "missing", "no dataset recorded: pass dataset_ref= to ctx.run(...)")


def _environment(environment: EnvironmentRecord | None) -> AuditCheck:
    if environment is None:
        return AuditCheck("environment", "missing", "no environment snapshot (Python, platform, packages)")
    if not environment.packages:
        return AuditCheck(
            "environment",
            "missing",
            f"Python {environment.python_version}, but no installed packages recorded",
        )
    return AuditCheck(
        "environment",
        "ok",
        f"Python {environment.python_version} on {environment.platform}, "
        f"{len(environment.packages)} packages",
    )


def _config(run: RunRecord) -> AuditCheck:
    if run.config_snapshot:
        return AuditCheck("config_snapshot", "ok", f"{len(run.config_snapshot)} top-level settings")
    return AuditCheck(
        "config_snapshot", "missing", "no configuration recorded: pass config_snapshot= to ctx.run(...)"
    )


def _artifact(artifact: ArtifactRecord) -> AuditCheck:
    manifest = ArtifactManifest(
        artifact_ref=artifact.artifact_ref,
        artifact_kind=artifact.kind,
        run_ref=artifact.run_id.partition("@")[0],
        stage_execution_ref=artifact.stage_id,
        location_ref=artifact.location,
        hash_algorithm=artifact.hash_algorithm,
        hash_value=artifact.hash_value,
        size_bytes=artifact.size_bytes,
        created_at=artifact.created_at,
    )
    verification = verify_manifest(manifest)
    status, detail = _VERIFICATION_DETAIL[verification.status]
    return AuditCheck(
        "artifact", status, f"{artifact.kind} at {verification.path}: {detail}", artifact.artifact_ref
    )


def audit_reproducibility(
    db: StoreDatabase, run_id: str, *, project: str | None = None
) -> ReproducibilityAudit:
    """What running `run_id` (a full ref, a bare name, `name@n`) again would need, one check each:
    `code_revision`, `git_tree_clean`, `dataset_ref`, `environment`, `config_snapshot`, and one
    `artifact` check per registered artifact (its file re-hashed now). `audit.complete` is False when
    some check is `missing`."""
    with reading(db) as connection:
        target = find_run(connection, run_id, project)
        (run,) = fetch_runs(connection, execution_ids=[target.execution_id])
        environment = fetch_environment(connection, target.execution_id)
        artifacts = fetch_artifacts(connection, target.execution_id)
    checks = [
        _code_revision(run, environment),
        _git_tree(environment),
        _dataset(run),
        _environment(environment),
        _config(run),
    ]
    # Hashing happens after the read transaction ends: a large file must not hold the store's snapshot.
    checks += [_artifact(artifact) for artifact in artifacts]
    return ReproducibilityAudit(run.run_id, tuple(checks))

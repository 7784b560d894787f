"""Lineage and audit over registry versions: pure functions of version records (number, aliases, tags).

The registry side (``unlearn.tracking``) turns MLflow model versions into :class:`Version` records; the ledger
maps a tag ``unlearn.forget_sha256`` back to its id list (ids never leave ``data/``). Tags read here are those
the verify stage writes: ``unlearn.role`` (original / retrain_reference / unlearned), ``unlearn.method``,
``unlearn.verdict``, ``unlearn.parent_version``, ``unlearn.forget_sha256``, ``unlearn.request_ids``,
``unlearn.dataset_fingerprint``, ``unlearn.model_sha256``, ``unlearn.certificate_sha256``, and the reference a
certificate used: ``unlearn.reference_sha256``, ``unlearn.reference_status`` (fresh / stale),
``unlearn.reference_runs_old``, ``unlearn.reference_forget_sha256`` (the forget list it excluded).

A version's own tags are set once, when it is registered, and never change. A later re-evaluation of the same
weights is recorded beside them as ``unlearn.eval.<UTC timestamp>.<field>`` (fields ``certificate_sha256``,
``verdict``, ``run_id``, ``forget_sha256``, ``reference_sha256``, ``git_commit``): :func:`evaluations` reads them.

>>> vs = [Version("1", (), {"unlearn.role": "original", "unlearn.method": "pretrain", "unlearn.verdict": "fail",
...                         "unlearn.dataset_fingerprint": "f" * 64}),
...       Version("2", ("production",), {"unlearn.role": "unlearned", "unlearn.method": "gp",
...                 "unlearn.verdict": "pass", "unlearn.parent_version": "1", "unlearn.forget_sha256": "a" * 64,
...                 "unlearn.dataset_fingerprint": "f" * 64})]
>>> [v.version for v in chain(vs, "2")]
['2', '1']
>>> [(r["version"], r["status"]) for r in audit_sample("s-1", vs, split="train", fingerprint="f" * 64,
...                                                 forget_ids=lambda sha: {"s-1"})]
[('1', 'contains it'), ('2', 'removed (certificate pass)')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

TAG = "unlearn."
EVAL_PREFIX = "unlearn.eval."


def evaluations(tags: dict[str, str]) -> dict[str, dict[str, str]]:
    """The re-evaluations recorded on a version, ``{id: {field: value}}`` in id (time) order.

    >>> evaluations({"unlearn.verdict": "pass", "unlearn.eval.20261202T101010Z.verdict": "fail",
    ...              "unlearn.eval.20261202T101010Z.run_id": "abc"})
    {'20261202T101010Z': {'verdict': 'fail', 'run_id': 'abc'}}
    """
    out: dict[str, dict[str, str]] = {}
    for key, value in tags.items():
        if key.startswith(EVAL_PREFIX) and "." in key[len(EVAL_PREFIX):]:
            ident, fld = key[len(EVAL_PREFIX):].rsplit(".", 1)
            out.setdefault(ident, {})[fld] = value
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Version:
    """One registered model version: its number, aliases and tags."""

    version: str
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    def tag(self, key: str, default: str = "") -> str:
        return self.tags.get(TAG + key, default)

    @property
    def role(self) -> str:
        return self.tag("role", "unknown")


def parse_model_spec(spec: str, default_alias: str = "production") -> tuple[str, str | None, str | None]:
    """``NAME@ALIAS`` / ``NAME/VERSION`` / ``NAME`` -> ``(name, alias, version)``; a bare name means the default
    alias.

    >>> parse_model_spec("digits-supervised/3"), parse_model_spec("m@staging"), parse_model_spec("m")
    (('digits-supervised', None, '3'), ('m', 'staging', None), ('m', 'production', None))
    """
    if "@" in spec:
        name, alias = spec.rsplit("@", 1)
        if not name or not alias:
            raise ValueError(f"{spec!r}: expected MODEL@ALIAS")
        return name, alias, None
    m = re.fullmatch(r"(.+)/(\d+)", spec)
    if m:
        return m.group(1), None, m.group(2)
    if not spec:
        raise ValueError("empty model name")
    return spec, default_alias, None


def resolve(versions: list[Version], alias: str | None, version: str | None) -> Version:
    """The version named by ``alias`` or ``version``; ``ValueError`` naming what exists otherwise."""
    for v in versions:
        if (version is not None and v.version == version) or (alias is not None and alias in v.aliases):
            return v
    have = ", ".join(f"v{v.version}" + "".join(f"@{a}" for a in v.aliases) for v in _sorted(versions)) or "none"
    what = f"version {version}" if version is not None else f"alias @{alias}"
    raise ValueError(f"no {what}; registered versions: {have}")


def chain(versions: list[Version], start: str) -> list[Version]:
    """``start`` and its ancestors through ``unlearn.parent_version``, newest first (cycles are an error)."""
    by_number = {v.version: v for v in versions}
    out, seen, cur = [], set(), start
    while cur:
        if cur in seen:
            raise ValueError(f"parent_version tags form a cycle at v{cur}")
        if cur not in by_number:
            raise ValueError(f"v{cur} is named as a parent but is not registered")
        seen.add(cur)
        out.append(by_number[cur])
        cur = by_number[cur].tag("parent_version")
    return out


def reference_for(versions: list[Version], v: Version) -> Version | None:
    """The retrain reference ``v``'s certificate used: the version whose weights match the tag
    ``unlearn.reference_sha256``; without that tag (older versions), the retrain reference registered for ``v``'s
    forget set and dataset, the newest such version not newer than ``v``, else the oldest newer one."""
    ref_sha = v.tag("reference_sha256")
    if ref_sha:
        return next((r for r in _sorted(versions) if r.tag("model_sha256") == ref_sha), None)
    sha, fp = v.tag("forget_sha256"), v.tag("dataset_fingerprint")
    refs = [r for r in _sorted(versions) if r.role == "retrain_reference" and r.tag("forget_sha256") == sha
            and r.tag("dataset_fingerprint") == fp and sha]
    older = [r for r in refs if int(r.version) <= int(v.version)]
    return older[-1] if older else (refs[0] if refs else None)


def lineage_lines(name: str, versions: list[Version], start: Version,
                  request_ids: Callable[[str], list[str] | None] = lambda sha: None) -> list[str]:
    """Human-readable chain from ``start`` back to the dataset fingerprint.

    ``request_ids(forget_sha256)`` resolves a forget list to its requests (the ledger); the tag
    ``unlearn.request_ids`` is used when it cannot.
    """
    lines = []
    links = chain(versions, start.version)
    for depth, v in enumerate(links):
        head = f"{name} v{v.version}" + "".join(f" @{a}" for a in v.aliases)
        lead = "" if depth == 0 else "  " * (depth - 1) + "└─ parent "
        verdict = v.tag("verdict", "?")
        if v.role == "original":
            verdict += " (negative control: caught)" if verdict == "fail" else " (negative control NOT caught)"
        lines.append(f"{lead}{head}  role={v.role}  method={v.tag('method', '?')}  verdict={verdict}")
        pad = "  " * depth + "   "
        sha = v.tag("forget_sha256")
        if sha:
            rids = request_ids(sha)
            rids = rids if rids is not None else [r for r in v.tag("request_ids").split(",") if r and r != "none"]
            lines.append(f"{pad}forget set {sha[:12]}  requests: {', '.join(rids) or 'none (not request-driven)'}")
        if v.role == "unlearned":
            ref = reference_for(versions, v)
            lines.append(f"{pad}retrain reference: {'v' + ref.version if ref else 'not registered'}"
                         f"{_reference_status(v)}  certificate sha256 {v.tag('certificate_sha256', '?')[:12]}")
        lines.append(f"{pad}model sha256 {v.tag('model_sha256', '?')[:12]}  git {v.tag('git_commit', '?')[:10]}")
        for ident, ev in evaluations(v.tags).items():
            cert = f"  certificate sha256 {ev['certificate_sha256'][:12]}" if ev.get("certificate_sha256") else ""
            lines.append(f"{pad}re-evaluated {ident}: verdict={ev.get('verdict', '?')}{cert}  "
                         f"run {ev.get('run_id', '?')[:12]}")
    fps = {v.tag("dataset_fingerprint") for v in links}
    fp = fps.pop() if len(fps) == 1 else None
    lines.append(f"dataset fingerprint {fp}" if fp else
                 f"dataset fingerprints differ along the chain: {', '.join(sorted(f[:12] for f in fps))}")
    return lines


def _reference_status(v: Version) -> str:
    """`` (fresh)`` or `` (stale: k run(s) old, excluded forget set <sha12>)`` from the reference tags."""
    status = v.tag("reference_status")
    if status != "stale":
        return f" ({status})" if status else ""
    return (f" (stale: {v.tag('reference_runs_old', '?')} run(s) old, excluded forget set "
            f"{v.tag('reference_forget_sha256', '?')[:12]}; reference rules on those samples only)")


def audit_sample(sample_id: str, versions: list[Version], *, split: str | None, fingerprint: str | None,
                 forget_ids: Callable[[str], set[str] | None]) -> list[dict]:
    """Per registered version: was it trained with ``sample_id``, and is there a passing certificate for the
    sample's removal?

    Args:
        split: the sample's split in the current manifest (``None``: not in it).
        fingerprint: the current dataset fingerprint; versions of another dataset cannot be judged.
        forget_ids: ``forget_sha256 -> set of ids`` (``None`` when the forget list is unknown here).

    Returns:
        Rows ``{version, aliases, role, method, verdict, trained_with, certified_removal, status}``;
        ``trained_with`` is None when it cannot be told. An unlearned version was *trained with* the sample
        (its weights descend from a model that saw it); whether that influence is gone is what its certificate
        says, so ``status`` is ``removed (certificate pass)`` only for a passing verdict.
    """
    rows = []
    for v in _sorted(versions):
        row = {"version": v.version, "aliases": list(v.aliases), "role": v.role, "method": v.tag("method"),
               "verdict": v.tag("verdict"), "trained_with": None, "certified_removal": False}
        if fingerprint is None or v.tag("dataset_fingerprint") != fingerprint:
            row["status"] = f"unknown: trained on dataset {v.tag('dataset_fingerprint', '?')[:12]}, not this one"
        elif split != "train":
            where = f"in the {split} split" if split else "not in the dataset"
            row.update(trained_with=False, status=f"never trained with it (the sample is {where})")
        elif v.role == "original":
            row.update(trained_with=True, status="contains it")
        else:
            ids = forget_ids(v.tag("forget_sha256"))
            if ids is None:
                row["status"] = f"unknown: forget set {v.tag('forget_sha256', '?')[:12]} is not in the ledger"
            elif sample_id not in ids:
                row.update(trained_with=True, status="contains it (not in its forget set)")
            elif v.role == "retrain_reference":
                row.update(trained_with=False, status="never trained with it (retrained without it)")
            elif v.tag("verdict") == "pass":
                row.update(trained_with=True, certified_removal=True, status="removed (certificate pass)")
            else:
                row.update(trained_with=True, status=f"removal not certified (verdict {v.tag('verdict', '?')})")
        later = evaluations(v.tags)
        if later:  # the registered verdict stands (immutable); a later evaluation that disagrees is shown beside it
            ident, ev = list(later.items())[-1]
            row["reevaluated"] = {"id": ident, **ev}
            if ev.get("verdict") != v.tag("verdict"):
                row["status"] += f"; re-evaluated {ident}: verdict {ev.get('verdict', '?')}"
        rows.append(row)
    return rows


def _sorted(versions: list[Version]) -> list[Version]:
    return sorted(versions, key=lambda v: int(v.version))

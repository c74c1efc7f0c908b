"""The finding model's JSON form and copies keep every field."""

from dataclasses import fields

from forge_app.core.models import Finding, Fingerprint, Fix, RuleInfo


def full_finding() -> Finding:
    return Finding(rule_id="r", path="a/b.py", start_line=3, end_line=4, message="m", severity="error",
                   start_col=2, end_col=9, metadata={"k": [1]}, rule=RuleInfo(cwe=("CWE-1",), owasp=("A1",),
                   category="security", references=("https://x",), technology=("py",), confidence="HIGH",
                   help_uri="https://h"), snippet="x = 1\ny = 2", fix=Fix(3, 4, ("z",)), tool="semgrep",
                   tool_ids={"a": "b"}, fingerprint=None)


def test_with_fingerprint_changes_only_the_fingerprint():
    f = full_finding()
    fp = Fingerprint("a" * 32, "b" * 16, ("c",), ("d",))
    g = f.with_fingerprint(fp)
    assert g.fingerprint == fp
    for field in fields(Finding):
        if field.name != "fingerprint":
            assert getattr(g, field.name) == getattr(f, field.name), field.name


def test_dict_round_trip_keeps_every_field():
    f = full_finding().with_fingerprint(Fingerprint("a" * 32, "b" * 16, ("c",), ("d",)))
    assert Finding.from_dict(f.to_dict()) == f

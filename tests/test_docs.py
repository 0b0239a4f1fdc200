"""User documentation: links resolve, and no lab-notebook history outside docs/lab/.

User docs are README.md, CHANGELOG.md and docs/*.md.  Measurement history (work-period names, commit
hashes, issue numbers) belongs in dated notes under docs/lab/; a relative link in any of these files
(docs/lab/ included) must point at a file that exists, and an anchor at a heading of that file.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
ALL_DOCS = USER_DOCS + sorted((ROOT / "docs" / "lab").glob("*.md"))

CODE = re.compile(r"```.*?```", re.DOTALL)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HISTORY = [
    re.compile(r"\b(first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)[- ]session", re.IGNORECASE),
    re.compile(r"\bsession ?\d", re.IGNORECASE),
    re.compile(r"\bissue ?#?\d", re.IGNORECASE),
    re.compile(r"(?<![\w/&])#\d+\b"),
    re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b"),  # a commit hash
]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = CODE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, re.MULTILINE)}


def test_user_docs_carry_no_work_period_names_hashes_or_issue_numbers():
    found = []
    for path in USER_DOCS:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pat in HISTORY:
                m = pat.search(line)
                if m:
                    found.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)!r}")
    assert not found, "lab-notebook history in user docs (move it to docs/lab/YYYY-MM-DD-topic.md):\n" + "\n".join(
        found
    )


def test_relative_links_and_anchors_resolve():
    bad = []
    for path in ALL_DOCS:
        text = CODE.sub("", path.read_text(encoding="utf-8"))
        for m in LINK.finditer(text):
            link = m.group(1)
            if re.match(r"[a-z]+:", link):  # http:, https:, mailto:
                continue
            target, _, anchor = link.partition("#")
            dest = (path.parent / target).resolve() if target else path
            if not dest.exists():
                bad.append(f"{path.relative_to(ROOT)}: {link} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{path.relative_to(ROOT)}: {link} (no such heading)")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_measurement_data_lives_under_docs_lab():
    """The raw JSON moved to docs/lab/data/; the scripts that read or write it must not use the old paths."""
    for old in ("perf", "results", "tuning", "soak"):
        assert not (ROOT / "docs" / old).exists(), f"docs/{old}/ should live under docs/lab/data/"
    stale = [
        f"{p.relative_to(ROOT)}: docs/{old}/"
        for p in sorted((ROOT / "scripts").iterdir())
        if p.is_file()
        for old in ("perf", "results", "tuning", "soak")
        if f"docs/{old}/" in p.read_text(encoding="utf-8") or f'"docs/{old}"' in p.read_text(encoding="utf-8")
    ]
    assert not stale, "scripts still use the old data paths:\n" + "\n".join(stale)

"""The published matrix (realservers/matrix.py, matrix_page.py) from small fixture runs.

No server starts here: a "run" is a results.json-shaped dict and a run.json-shaped dict, as
``realservers.suite_runner`` returns them. What must hold: every non-pass verdict on the
page carries a triage label from the expectation file or is marked untriaged (and the run
exits 1); history keeps one entry per suite version and commit, and the changes column is
conformance.face.diff's comparison with the previous suite; the page is self-contained and
escapes what servers sent.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from conformance.face.report_page import LABELS
from realservers import matrix
from realservers.expectations import Expectation, ExpectationFile, render
from realservers.matrix_page import palette
from realservers.matrix_page import render as render_page

SUITE_A = {"version": "0.1.0", "commit": "aaaaaaaaaa"}
SUITE_B = {"version": "0.2.0", "commit": "bbbbbbbbbb"}
HOSTILE = "<script>alert(1)</script>"


def _results(**outcomes: str) -> dict[str, Any]:
    checks = {
        cid.replace("__", "."): {
            "outcome": o,
            "level": "MUST",
            "area": cid.split("__")[0],
            "message": f"{HOSTILE} said {o}",
        }
        for cid, o in outcomes.items()
    }
    return {
        "complete": True,
        "checks": checks,
        "counts": {"pass": sum(o == "pass" for o in outcomes.values()), "fail": 1},
        "spent": {
            "requests": 12,
            "prompt_tokens": 300,
            "completion_tokens": 45,
            "total_tokens": 345,
        },
    }


RUN = {
    "target": "demo",
    "title": "Demo server",
    "finished_at": "2026-12-05T07:00:00+00:00",
    "suite_wall_seconds": 41.5,
    "facts": {
        "version": "Demo 1.2.3",
        "versions": {"demo": "1.2.3"},
        "model": {"file": "m.gguf", "alias": "m", "source": "PyPI wheel m==1"},
        "startup_seconds": 3.2,
    },
}
EXP = ExpectationFile(
    checks={
        "stream.done": Expectation("fail", why="no [DONE] sent", triage="divergence"),
        "tools.call": Expectation("not_applicable", why="model calls no tool", triage="limitation"),
        "usage.sum": Expectation("fail", why="suite counted wrong", triage="suite-issue"),
        "seed.same": Expectation("pass", unstable="sampling", why="may vary", triage="limitation"),
    }
)


@pytest.fixture
def published() -> dict[str, Any]:
    results = _results(
        stream__done="fail",
        tools__call="not_applicable",
        usage__sum="fail",
        seed__same="warn",
        errors__auth="fail",
        models__list="pass",
    )
    return matrix.build_results(RUN, results, EXP, SUITE_A, "expectations/demo.toml")


def test_every_non_pass_verdict_is_labelled(published: dict[str, Any]) -> None:
    checks = published["checks"]
    assert checks["stream.done"]["label"] == "true divergence"
    assert checks["tools.call"]["label"] == "known limitation"
    assert checks["usage.sum"]["label"] == "suite issue"
    assert checks["seed.same"]["label"] == "known limitation"  # unstable: any verdict is known
    assert "label" not in checks["models.list"]
    assert [c for c in checks.values() if c["outcome"] != "pass" and not c.get("label")] == []


def test_a_verdict_the_file_does_not_expect_is_untriaged(published: dict[str, Any]) -> None:
    auth = published["checks"]["errors.auth"]
    assert auth["label"] == matrix.UNTRIAGED
    assert "not in expectations/demo.toml" in auth["why"]
    assert matrix.untriaged(published) == ["errors.auth"]


def test_results_name_server_model_suite_and_cost(published: dict[str, Any]) -> None:
    assert published["server"]["version"] == "Demo 1.2.3"
    assert published["server"]["model"]["file"] == "m.gguf"
    assert published["suite"] == SUITE_A
    run = published["run"]
    assert (run["requests"], run["total_tokens"], run["suite_wall_seconds"]) == (12, 345, 41.5)
    assert run["startup_seconds"] == 3.2


def test_relabel_picks_up_triage_written_later(published: dict[str, Any]) -> None:
    triaged = ExpectationFile(checks={**EXP.checks})
    triaged.checks["errors.auth"] = Expectation("fail", why="401 missing", triage="divergence")
    assert matrix.untriaged(matrix.relabel(published, triaged, "expectations/demo.toml")) == []


def test_history_keeps_one_run_per_suite_and_diffs_against_the_previous(
    published: dict[str, Any],
) -> None:
    history = matrix.record_history({}, published)
    history = matrix.record_history(history, published)  # a re-run replaces its entry
    assert len(history["runs"]) == 1
    assert matrix.changes_since_previous(history, published)["since"] is None
    later = json.loads(json.dumps(published)) | {"suite": SUITE_B}
    later["checks"]["stream.done"]["outcome"] = "pass"
    changes = matrix.changes_since_previous(history, later)
    assert changes["since"]["commit"] == SUITE_A["commit"]
    assert [(e["check"], e["kind"]) for e in changes["entries"]] == [("stream.done", "improved")]
    assert len(matrix.record_history(history, later)["runs"]) == 2


def test_publish_and_render_only_round_trip(tmp_path: Path, published: dict[str, Any]) -> None:
    out, exp_dir = tmp_path / "docs", tmp_path / "exp"
    exp_dir.mkdir()
    (exp_dir / "demo.toml").write_text(render(EXP, "demo"))
    matrix.publish("demo", published, out)
    assert (out / "history" / "demo.json").is_file()
    args = SimpleNamespace(
        out=out,
        expectations_dir=exp_dir,
        reports_dir=tmp_path / "r",
        docs=tmp_path / "compatibility.md",
        render_only=True,
    )
    assert matrix.main(args) == 1  # errors.auth is untriaged
    extra = Expectation("fail", why="401 missing", triage="divergence")
    (exp_dir / "demo.toml").write_text(
        render(ExpectationFile(checks={**EXP.checks, "errors.auth": extra}), "demo")
    )
    assert matrix.main(args) == 0
    stored = json.loads((out / "demo" / "results.json").read_text())
    assert stored["checks"]["errors.auth"]["label"] == "true divergence"
    assert (out / "index.html").is_file()
    assert "demo" in (tmp_path / "compatibility.md").read_text()


def test_page_is_self_contained_and_escapes_server_text(published: dict[str, Any]) -> None:
    page = render_page({"demo": published}, generated_at="now")
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert "http://" not in page and "https://" not in page  # nothing loaded from anywhere
    for needle in ("Demo server", "Demo 1.2.3", "m.gguf", "345 tokens", "aaaaaaaaaa"):
        assert needle in page
    assert page.count('class="mark untriaged"') >= 1  # errors.auth, plus the legend
    assert 'id="f-nonpass"' in page


def test_page_colours_are_the_suite_reports() -> None:
    colours = palette()
    assert set(colours) == set(LABELS)
    assert colours["pass"].startswith("#") and colours["fail"] != colours["pass"]


def test_fast_and_slow_servers_run_in_two_lanes() -> None:
    seen: dict[str, str] = {}

    def job(name: str) -> matrix.Outcome:
        seen[name] = threading.current_thread().name
        return matrix.Outcome(name, True, "", 0.0)

    names = ["llamacpp", "transformers", "litellm", "fastchat"]
    done = matrix.run_lanes(names, 2, job)
    assert sorted(o.name for o in done) == sorted(names)
    assert seen["llamacpp"] == seen["litellm"] != seen["transformers"] == seen["fastchat"]
    assert [o.name for o in matrix.run_lanes(names, 1, job)] == names


def test_a_key_in_any_report_file_is_found(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "api.log").write_text("args: api_keys=['sk-secret-1']")
    (tmp_path / "results.json").write_text("{}")
    assert matrix.leaks(tmp_path, "sk-secret-1") == [str(tmp_path / "server" / "api.log")]
    assert matrix.leaks(tmp_path, "") == []


def test_a_recorded_expectation_file_seeds_the_history(published: dict[str, Any]) -> None:
    history = matrix.seed_history(EXP, SUITE_B)
    assert history["runs"][0]["verdicts"]["stream.done"] == "fail"
    changes = matrix.changes_since_previous(history, published)
    assert changes["since"]["source"] == "expectations file"
    assert ("seed.same", "regressed") in [(e["check"], e["kind"]) for e in changes["entries"]]
    assert matrix.seed_history(ExpectationFile(), SUITE_B) == {"runs": []}


def test_a_check_without_an_answer_needs_no_triage_and_keeps_its_expectation() -> None:
    results = _results(stream__done="not_judged", errors__auth="not_judged")
    published = matrix.build_results(RUN, results, EXP, SUITE_A, "expectations/demo.toml")
    assert published["checks"]["stream.done"]["label"] == "no verdict"
    assert matrix.untriaged(published) == []
    kept = matrix.keep_unjudged(results, EXP)["checks"]
    assert kept["stream.done"] == {"outcome": "fail", "message": "no [DONE] sent"}
    assert kept["errors.auth"]["outcome"] == "not_judged"  # nothing recorded to keep


def test_fastchat_sees_a_capped_context_and_the_same_weights(tmp_path: Path) -> None:
    from realservers.fastchat import capped_view

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"max_position_embeddings": 8192, "vocab_size": 3}')
    (model / "model.safetensors").write_text("weights")
    view = capped_view(model, tmp_path / "view", 2048)
    assert json.loads((view / "config.json").read_text()) == {
        "max_position_embeddings": 2048,
        "vocab_size": 3,
    }
    assert (view / "model.safetensors").resolve() == (model / "model.safetensors").resolve()
    assert capped_view(model, tmp_path / "view", 1024) == view  # re-made in place

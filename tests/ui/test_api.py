"""The dashboard's JSON endpoints and its guard, through Starlette's TestClient on a live-captured
workspace (tests/ui/ui_workspaces.py)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from ui_workspaces import FAILING, HOSTILE_NAME, HOSTILE_SCRIPT, SAMPLES, STEPS

from contexta import Workspace
from contexta._ui._app import build_app
from contexta._ui._security import token_cookie

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client(demo_workspace: Path) -> Iterator[TestClient]:
    with Workspace(demo_workspace) as workspace, TestClient(build_app(workspace), base_url=LOCAL) as client:
        yield client


def _ok(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_run_table_pages_sorts_and_adds_the_columns_asked(client: TestClient) -> None:
    page = _ok(client, "/api/runs", sort="name", columns="params.lr,metrics.train:loss", limit=2)

    assert page["columns"] == [
        "run_id",
        "name",
        "status",
        "started_at",
        "duration",
        "params.lr",
        "metrics.train:loss",
    ]
    assert [row[1] for row in page["rows"]] == [HOSTILE_NAME, "baseline"]
    assert page["has_more"] is True
    rest = _ok(client, "/api/runs", sort="name", columns="params.lr", limit=2, offset=2)
    assert [row[1] for row in rest["rows"]] == ["broken", "tuned"]
    assert rest["has_more"] is False


def test_a_filter_keeps_the_runs_it_holds_for(client: TestClient) -> None:
    page = _ok(client, "/api/runs", filter="params.lr < 0.2 and status = completed", sort="-params.lr")

    assert [row[1] for row in page["rows"]] == ["baseline", "tuned"]


def test_a_malformed_filter_is_400_with_the_caret_under_the_fault(client: TestClient) -> None:
    response = client.get("/api/runs", params={"filter": "params.lr >> 3"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "filter_invalid"
    assert "column" in error["message"]
    assert error["message"].splitlines()[-1].strip() == "^"


def test_bad_paging_is_400_naming_the_parameter(client: TestClient) -> None:
    response = client.get("/api/runs", params={"limit": "lots"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "limit_invalid"


def test_the_field_names_offer_params_and_metrics(client: TestClient) -> None:
    fields = _ok(client, "/api/fields")

    assert {"params.lr", "params.optimizer.name", "metrics.loss", "metrics.accuracy"} <= {
        *fields["params"],
        *fields["metrics"],
    }


def test_a_run_detail_has_params_timeline_metrics_events_artifacts_and_diagnostics(
    client: TestClient,
) -> None:
    detail = _ok(client, "/api/runs/baseline")

    assert detail["run"]["run_id"] == "run:demo.baseline"
    assert detail["params"]["optimizer"] == {"name": "sgd", "momentum": 0.9}
    assert [stage["name"] for stage in detail["stages"]] == ["train", "evaluate"]
    assert detail["sample_count"] == SAMPLES
    summaries = {(metric["stage_name"], metric["metric_key"]): metric for metric in detail["metrics"]}
    assert summaries[("train", "loss")]["point_count"] == STEPS
    assert detail["events"][0]["message"] == "loaded 1797 rows"
    (artifact,) = detail["artifacts"]
    assert artifact["hash_value"]
    codes = [issue["code"] for issue in detail["diagnostics"]["issues"]]
    assert codes.count("failed_sample") == len(FAILING)
    assert detail["environment"]["python_version"]


def test_a_failed_run_says_why(client: TestClient) -> None:
    detail = _ok(client, "/api/runs/broken")

    assert detail["run"]["status"] == "failed"
    assert detail["run"]["failure"]["message"] == "loss diverged at step 1"


def test_an_unknown_run_is_404(client: TestClient) -> None:
    response = client.get("/api/runs/nosuchrun")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "run_not_found"


def test_a_series_comes_whole_when_short_with_its_nan_as_a_gap_and_a_cursor(client: TestClient) -> None:
    series = _ok(client, "/api/runs/baseline/series", key="loss", stage="train", width=1000)

    assert series["total_points"] == STEPS
    assert series["downsampled"] is False
    assert series["xs"] == list(range(STEPS))
    assert series["ys"][50] is None
    assert series["last_seq"] > 0


def test_a_narrow_chart_gets_a_downsampled_series_keeping_the_extremes(client: TestClient) -> None:
    whole = _ok(client, "/api/runs/baseline/series", key="loss", stage="train", width=1000)
    narrow = _ok(client, "/api/runs/baseline/series", key="loss", stage="train", width=20)

    assert narrow["downsampled"] is True
    # Each bucket's min and max, the first and last point, and the one NaN as a gap.
    assert len(narrow["xs"]) <= 2 * 20 + 2 + 1
    assert sum(1 for y in narrow["ys"] if y is None) == 1
    finite = [y for y in whole["ys"] if y is not None]
    kept = [y for y in narrow["ys"] if y is not None]
    assert max(kept) == max(finite)
    assert min(kept) == min(finite)


def test_a_zoomed_range_and_the_time_axis(client: TestClient) -> None:
    zoomed = _ok(client, "/api/runs/baseline/series", key="loss", stage="train", x0=100, x1=110)
    timed = _ok(client, "/api/runs/baseline/series", key="loss", stage="train", x="time")

    assert zoomed["xs"] == list(range(100, 111))
    assert all(xs > 1e9 for xs in timed["xs"])
    assert timed["xs"] == sorted(timed["xs"])


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"key": "loss", "x": "epoch"}, "series_axis_invalid"),
        ({"key": "loss", "x0": "1"}, "x_range_invalid"),
        ({"key": "loss", "width": "0"}, "width_invalid"),
        ({}, "metric_key_invalid"),
    ],
)
def test_bad_series_parameters_are_400(client: TestClient, params: dict[str, str], code: str) -> None:
    response = client.get("/api/runs/baseline/series", params=params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_the_samples_page_filters_failed_and_sorts_by_a_metric(client: TestClient) -> None:
    page = _ok(client, "/api/runs/baseline/samples", sort="-metrics.latency.ms")
    failed = _ok(client, "/api/runs/baseline/samples", failed=1)

    assert page["total"] == SAMPLES
    assert [row["metrics"]["latency.ms"] for row in page["rows"]][:2] == [
        10.0 + SAMPLES - 1,
        10.0 + SAMPLES - 2,
    ]
    assert [row["name"] for row in failed["rows"]] == [f"case-{case:02d}" for case in FAILING]
    assert all("no answer" in " ".join(row["events"]) for row in failed["rows"])


def test_compare_gives_deltas_differing_params_and_overlays(client: TestClient) -> None:
    comparison = _ok(client, "/api/compare", runs="baseline,tuned")

    metrics = {(metric["stage_name"], metric["metric_key"]): metric for metric in comparison["metrics"]}
    assert math.isclose(metrics[("evaluate", "accuracy")]["deltas"][1], 0.1)
    assert [field["field"] for field in comparison["params"]] == ["config_snapshot.lr"]
    assert {
        "stage": "train",
        "key": "loss",
        "run_ids": ["run:demo.baseline", "run:demo.tuned"],
    } in comparison["series"]


def test_compare_needs_two_runs(client: TestClient) -> None:
    response = client.get("/api/compare", params={"runs": "baseline"})
    itself = client.get("/api/compare", params={"runs": "baseline,baseline"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "compare_runs_invalid"
    assert itself.status_code == 400  # one run named twice is not a comparison
    assert "different runs" in itself.json()["error"]["message"]


def test_too_many_columns_is_a_400_saying_how_many_are_allowed(client: TestClient) -> None:
    columns = ",".join(f"params.p{index}" for index in range(1_500))

    response = client.get("/api/runs", params={"columns": columns})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "columns_invalid" and "at most 500 columns" in error["message"]


def test_hostile_text_comes_back_as_data(client: TestClient) -> None:
    detail = _ok(client, "/api/runs/" + HOSTILE_NAME)

    assert detail["run"]["name"] == HOSTILE_NAME
    assert detail["events"][0]["message"] == HOSTILE_SCRIPT
    assert detail["stages"][0]["name"] == HOSTILE_SCRIPT


# -- verify ---------------------------------------------------------------------------------------


def test_verify_rehashes_with_the_header(client: TestClient) -> None:
    artifact = _ok(client, "/api/runs/baseline")["artifacts"][0]["artifact_ref"]

    response = client.post(
        "/api/artifacts/verify", json={"artifact_ref": artifact}, headers={"X-Contexta": "1"}
    )

    assert response.status_code == 200
    assert response.json()["status"] == "verified"


def test_verify_without_the_header_is_refused(client: TestClient) -> None:
    artifact = _ok(client, "/api/runs/baseline")["artifacts"][0]["artifact_ref"]

    form = client.post("/api/artifacts/verify", data={"artifact_ref": artifact})
    json = client.post("/api/artifacts/verify", json={"artifact_ref": artifact})

    assert form.status_code == json.status_code == 403
    assert json.json()["error"]["code"] == "header_required"


def test_verify_of_an_unknown_artifact_is_404(client: TestClient) -> None:
    response = client.post(
        "/api/artifacts/verify",
        json={"artifact_ref": "artifact:demo.baseline.nothing-0123456789abcdef"},
        headers={"X-Contexta": "1"},
    )

    assert response.status_code == 404


def test_verify_is_post_only(client: TestClient) -> None:
    assert client.get("/api/artifacts/verify").status_code in (404, 405)


# -- the guard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "10.0.0.5"])
def test_a_foreign_host_header_is_refused(client: TestClient, host: str) -> None:
    response = client.get("/api/runs", headers={"Host": host})

    assert response.status_code == 421
    assert response.json()["error"]["code"] == "host_not_allowed"


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765"])
def test_loopback_names_are_accepted(client: TestClient, host: str) -> None:
    assert client.get("/api/runs", headers={"Host": host}).status_code == 200


def test_no_cors_headers_even_when_asked(client: TestClient) -> None:
    response = client.get("/api/runs", headers={"Origin": "https://evil.example"})
    preflight = client.options(
        "/api/artifacts/verify",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    for answer in (response, preflight):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("path", ["/", "/api/runs", "/static/app.js", "/api/nothing"])
def test_every_response_has_a_strict_content_security_policy(client: TestClient, path: str) -> None:
    response = client.get(path)

    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_page_has_no_inline_script(client: TestClient) -> None:
    page = client.get("/").text

    assert "<script>" not in page
    assert "onload=" not in page and "style=" not in page


def test_the_package_ships_uplot_with_its_license(client: TestClient) -> None:
    assert client.get("/static/uPlot.iife.min.js").status_code == 200
    assert "MIT License" in client.get("/static/uPlot.LICENSE").text


@pytest.fixture
def token_client(demo_workspace: Path) -> Iterator[TestClient]:
    with (
        Workspace(demo_workspace) as workspace,
        TestClient(build_app(workspace, token="s3cret"), base_url=LOCAL, follow_redirects=False) as client,
    ):
        yield client


def test_with_a_token_a_request_without_it_is_401(token_client: TestClient) -> None:
    assert token_client.get("/api/runs").status_code == 401
    assert token_client.get("/").status_code == 401
    assert token_client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_bearer_token_is_accepted(token_client: TestClient) -> None:
    assert token_client.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_token_in_the_url_becomes_a_strict_http_only_cookie_once(token_client: TestClient) -> None:
    response = token_client.get("/", params={"token": "s3cret"})

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{token_cookie(80)}=s3cret")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert token_client.get("/api/runs", headers={"Cookie": f"{token_cookie(80)}=s3cret"}).status_code == 200


def test_a_wrong_token_in_the_url_is_refused(token_client: TestClient) -> None:
    assert token_client.get("/", params={"token": "guess"}).status_code == 401


def test_archived_runs_are_hidden_from_the_table_unless_asked(tmp_path: Path) -> None:
    from contexta import Contexta

    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        for name, accuracy in (("kept", 0.9), ("old", 0.7)):
            with ctx.run(name) as run:
                run.metric("accuracy", accuracy)
        ctx.archive_run("old")
    with Workspace(workspace) as reader, TestClient(build_app(reader), base_url=LOCAL) as local:
        shown = _ok(local, "/api/runs", sort="name")
        every = _ok(local, "/api/runs", sort="name", archived="1")
    assert [row[1] for row in shown["rows"]] == ["kept"]
    assert [row[1] for row in every["rows"]] == ["kept", "old"]


@pytest.mark.parametrize("token", ["two words", "semi;colon", 'a"quote', "t\u00f6ken", "a,b=c"])
def test_any_token_the_user_picks_opens_the_dashboard_from_the_printed_url(
    demo_workspace: Path, token: str
) -> None:
    # The cookie the URL's token becomes is quoted by the cookie rules when the token holds a space,
    # a `;`, a quote or a non-ASCII letter; the browser sends it back as set, and it must still pass.
    with (
        Workspace(demo_workspace) as workspace,
        TestClient(build_app(workspace, token=token), base_url=LOCAL) as client,
    ):
        assert client.get("/", params={"token": token}).status_code == 200
        assert client.get("/api/runs").status_code == 200


def test_two_token_dashboards_on_one_machine_keep_their_own_cookies(demo_workspace: Path) -> None:
    # A browser keeps one cookie per name for a host whatever its port: the second dashboard's
    # cookie must not take the place of the first's (whose tab would then answer 401 to everything).
    jar: dict[str, str] = {}
    with (
        Workspace(demo_workspace) as workspace,
        TestClient(
            build_app(workspace, token="first"), base_url=f"{LOCAL}:8765", follow_redirects=False
        ) as first,
        TestClient(
            build_app(workspace, token="second"), base_url=f"{LOCAL}:8766", follow_redirects=False
        ) as second,
    ):
        for client, token in ((first, "first"), (second, "second")):
            set_cookie = client.get("/", params={"token": token}).headers["set-cookie"]
            name, _, value = set_cookie.partition(";")[0].partition("=")
            jar[name] = value
        cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
        assert first.get("/api/runs", headers={"Cookie": cookie}).status_code == 200
        assert second.get("/api/runs", headers={"Cookie": cookie}).status_code == 200


def test_an_unexpected_failure_is_a_500_that_still_carries_the_security_headers(
    demo_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contexta._ui import _api

    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug in an endpoint")

    monkeypatch.setattr(_api, "fields", broken)
    with (
        Workspace(demo_workspace) as workspace,
        TestClient(build_app(workspace), base_url=LOCAL, raise_server_exceptions=False) as local,
    ):
        response = local.get("/api/fields")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "a bug in an endpoint" not in response.text  # the traceback stays in the server's log
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"

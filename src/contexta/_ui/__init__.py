"""`contexta ui`: a live dashboard of a workspace, served read-only on this machine.

Internal: nothing here is imported by `import contexta` or by any other command; Starlette and
uvicorn load when `contexta ui` runs (or a test builds the app with `_app.build_app`).

JSON API (every answer is JSON; an error is `{"error": {"code", "message"}}` with status 400 for
bad input, 404 for an unknown run, stage, metric or artifact, 503 when the store cannot be read):

- `GET /api/runs?filter=&sort=&columns=&limit=&offset=&archived=&project=`: one page of the run
  table, `{columns, rows, offset, limit, has_more}`. `filter` and `sort` are the filter language of
  `contexta runs --filter/--sort` (default sort `-started_at`); `columns` adds fields (`params.lr`,
  `metrics.accuracy`) to run_id, name, status, started_at and duration; `limit` at most 1000
  (default 50); archived runs only with `archived=1`. A malformed filter is 400 `filter_invalid`
  whose message holds the expression with a caret under the fault.
- `GET /api/fields`: the columns the table can add, `{plain, params, metrics}`.
- `GET /api/runs/{run_id}`: the run (`run`: summary, status, failure, notes), `params` (its
  config_snapshot), `environment`, `stages`, `batches`, `samples` (the first 2000; `sample_count`),
  `metrics` (per stage: latest, min, max, count, per-sample aggregate), `events` (the first 1000;
  `event_count`), `artifacts` (with digests), `diagnostics` (issues and completeness notes),
  `record_counts`.
- `GET /api/runs/{run_id}/series?key=&stage=&x=step|time&width=&x0=&x1=`: one metric, about
  `width` pixels' worth of points (downsampled on the server; `x0`/`x1` a zoomed range): `{run_id,
  stage, metric_key, x, total_points, downsampled, xs, ys, last_seq}`; NaN and infinities are null
  (gaps); `last_seq` is the cursor for the stream.
- `GET /api/runs/{run_id}/samples?stage=&failed=1&sort=&limit=&offset=`: one page of the sample
  table, `{run_id, stage, metric_keys, total, failed_count, offset, limit, rows}`; `sort` is any
  column, `-` first for largest first (`-metrics.latency.ms`).
- `GET /api/compare?runs=a,b,...`: 2 to 20 runs: `metrics` (latest value per run and the delta from
  the first run), `params` and `environment` (fields that differ), `series` (metric series two or
  more runs recorded, to overlay via `/series`).
- `POST /api/artifacts/verify` with `{"artifact_ref"}` and the header `X-Contexta: 1` (which a
  cross-site form cannot send): the artifact re-hashed now, `{artifact_ref, status, ...}`.
- `GET /api/stream?runs=1&series=RUN|STAGE|KEY|CURSOR...` (Server-Sent Events): what the page
  watches, each series with the `last_seq` it has. Events: `hello`, then `runs` (`{changes: [{run_id,
  status, ended_at, archived, new}]}`) when runs appear or change, `series` (`{series: [{run_id,
  stage, key, last_seq, seqs, steps, times, values}]}` with only the points after each cursor, or
  `reset: true` when too many arrived to send: refetch), and `: heartbeat` comments. The server
  notices commits to the store by polling `PRAGMA data_version` every 200 ms; one stream per page.

Security: the server binds 127.0.0.1 by default and refuses any non-loopback address without an
access token; it checks the Host header (DNS rebinding), sends no CORS headers, and sets a strict
Content-Security-Policy (see `_security.py`). The front end (static/) inserts every captured value
as text, never as HTML.
"""

"""The forecasting commands on the demo data: predict, backtest, leaderboard, score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_cli import _cli_env, _cryptopredict

BACKEND = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    workdir = tmp_path_factory.mktemp("forecast-cli")
    env = _cli_env(
        DATABASE_URL=f"sqlite:///{workdir / 'demo.db'}",
        PYTHONPATH=str(BACKEND),
        COLUMNS="200",  # Rich shortens table cells to fit a terminal; pipes count as 80 wide
    )
    for command in (("db", "upgrade"), ("seed",)):
        done = _cryptopredict(*command, env=env, cwd=workdir)
        assert done.returncode == 0, done.stderr
    return env, workdir


def test_predict_backtest_leaderboard_and_score(demo: tuple[dict[str, str], Path]) -> None:
    env, workdir = demo
    predicted = _cryptopredict(
        "predict", "eth", "-H", "24h", "-m", "random_walk", "-m", "auto_ets", "--json",
        env=env, cwd=workdir,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr
    run = json.loads(predicted.stdout)
    assert run["stored"] == 2
    assert {p["model_name"] for p in run["predictions"]} == {"random_walk", "auto_ets"}
    # The demo file's last ETH candle opened 2020-01-16; the forecast is for a day later.
    assert {p["target_timestamp"] for p in run["predictions"]} == {"2020-01-18T00:00:00Z"}

    tested = _cryptopredict(
        "backtest", "ETH", "-H", "24h", "--windows", "10", "-m", "random_walk_drift", "--json",
        env=env, cwd=workdir,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stderr
    backtest = json.loads(tested.stdout)
    assert backtest["status"] == "succeeded" and backtest["windows_done"] == 10
    board = backtest["result"]["leaderboard"]
    assert {row["model"] for row in board} == {"random_walk", "random_walk_drift"}

    shown = _cryptopredict("leaderboard", "ETH", "-H", "24h", env=env, cwd=workdir)
    assert shown.returncode == 0, shown.stderr
    assert "random_walk_drift" in shown.stdout and "champion" in shown.stdout

    scored = _cryptopredict("score", "--json", env=env, cwd=workdir)
    assert scored.returncode == 0, scored.stderr
    # The targets lie after the demo data ends: nothing to score, nothing invented.
    assert json.loads(scored.stdout) == {"scored": 0, "waiting": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "DOGE"), "no cryptocurrency with symbol 'DOGE'"),
        (("predict", "ETH", "-H", "1h"), "1h cannot be forecast from ETH's 1d candles"),
        (("predict", "BTC", "-H", "2h"), "horizons.0"),
        (("predict", "BTC", "-m", "oracle"), "unknown model"),
        (("backtest", "ETH", "--windows", "400"), "need"),
        (("leaderboard", "LTC", "-H", "7d"), "no finished backtest for LTC at 7d"),
        (("leaderboard", "LTC", "-H", "1y"), "--horizon must be one of"),
    ],
)
def test_bad_input_exits_with_one_line(
    demo: tuple[dict[str, str], Path], args: tuple[str, ...], message: str
) -> None:
    env, workdir = demo
    result = _cryptopredict(*args, env=env, cwd=workdir)
    assert result.returncode in (1, 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]

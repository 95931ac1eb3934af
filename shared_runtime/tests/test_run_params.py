"""Run parameters are checked before a run: unknown keys, dates, ordered windows."""

import pytest

from shared_runtime.run_params import RunParamsError, check_dates, check_known, declared_keys


@pytest.fixture
def conf(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "parameters_etl.yml").write_text(
        "etl:\n  window:\n    start: ${runtime_params:window.start,2025-01-01}\n"
        "    end: ${runtime_params:window.end,2025-02-01}\n  max_reject_ratio: 0.01\n"
    )
    (base / "catalog.yml").write_text("model:\n  version: ${runtime_params:model_version,null}\n")
    return [base]


def test_declared_keys_are_parameter_paths_and_runtime_params_reads(conf):
    keys = declared_keys(conf)
    assert {"etl", "etl.window", "etl.window.start", "etl.max_reject_ratio"} <= keys
    assert {"window.start", "window.end", "model_version"} <= keys
    assert "catalog" not in keys and "model.version" not in keys


def test_unknown_key_is_refused_with_the_nearest_known_key(conf):
    known = declared_keys(conf)
    check_known({"window": {"start": "2025-01-02"}, "etl": {"max_reject_ratio": 0.1}}, known)
    with pytest.raises(RunParamsError, match=r"unknown parameter 'windw.start'.*window.start"):
        check_known({"windw": {"start": "2025-01-02"}}, known)
    with pytest.raises(RunParamsError, match=r"unknown parameter 'zzz'") as raised:
        check_known({"zzz": 1}, known)
    assert "Did you mean" not in str(raised.value)


def test_an_impossible_date_names_the_key_the_user_typed():
    params = {"etl": {"window": {"start": "2025-13-01", "end": "2025-02-01"}}}
    with pytest.raises(RunParamsError, match=r"window.start=2025-13-01 is not a date"):
        check_dates(params, {"window": {"start": "2025-13-01"}})
    with pytest.raises(RunParamsError, match=r"etl.window.start=2025-13-01 is not a date"):
        check_dates(params, {})


def test_window_bounds_must_increase_in_declared_order():
    check_dates({"t": {"window": {"a": "2025-01-01", "b": "2025-02-01", "c": "2025-03-01"}}}, {})
    with pytest.raises(RunParamsError, match=r"t.window.b=2025-03-01 must be before t.window.c"):
        check_dates(
            {"t": {"window": {"a": "2025-01-01", "b": "2025-03-01", "c": "2025-03-01"}}}, {}
        )
    reversed_ = {"etl": {"window": {"start": "2025-03-01", "end": "2025-02-01"}}}
    runtime = {"window": {"start": "2025-03-01", "end": "2025-02-01"}}
    with pytest.raises(RunParamsError, match=r"window.start=2025-03-01 must be before window.end"):
        check_dates(reversed_, runtime)


def test_as_of_must_be_a_date_when_set():
    check_dates({"simulate": {"as_of": None}, "labels": {"as_of": "2025-07-01"}}, {})
    with pytest.raises(RunParamsError, match=r"labels.as_of=July is not a date"):
        check_dates({"labels": {"as_of": "July"}}, {})


def test_start_bounds_come_first_whatever_the_declaration_order():
    check_dates({"t": {"window": {"end": "2025-02-01", "start": "2025-01-01"}}}, {})
    with pytest.raises(
        RunParamsError, match=r"t.window.start=2025-03-01 must be before t.window.end"
    ):
        check_dates({"t": {"window": {"end": "2025-02-01", "start": "2025-03-01"}}}, {})

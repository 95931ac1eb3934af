"""ml_app's MLflow hook follows kedro-mlflow's own switch: with tracking disabled for a pipeline
it logs and registers nothing, even when some MLflow run is active."""

import mlflow
from kedro.io import DataCatalog

from ml_app.mlflow_hook import TrainingMlflowHook
from ml_app.pipeline_registry import register_pipelines


def test_tracking_disabled_logs_and_registers_nothing_even_inside_an_active_run(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    training = register_pipelines()["training"]
    hook = TrainingMlflowHook()
    # what kedro-mlflow's before_pipeline_run sets for a pipeline listed in mlflow.yml's
    # tracking.disable_tracking.pipelines (it then opens no run of its own)
    hook._is_mlflow_enabled = False
    with mlflow.start_run() as run:  # a run someone else opened
        hook.after_pipeline_run({"pipeline_names": ["training"]}, training, DataCatalog())
        assert mlflow.active_run().info.run_id == run.info.run_id  # not ended by the hook
    client = mlflow.MlflowClient()
    assert not client.list_artifacts(run.info.run_id)
    assert not client.search_registered_models()
    assert client.get_run(run.info.run_id).info.status == "FINISHED"

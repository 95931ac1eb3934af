"""The hooks run in the order the run needs: MLflow's run is open before the hooks that record
into it, and the model hook does logging and registry bookkeeping itself, in order."""

from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks

from ml_app import settings
from ml_app.hooks import LazyMlflowHook
from ml_app.run_inputs import MlflowRunInputsHooks
from shared_runtime.run_params import RunParamsHooks


def call_order(hook_name: str) -> list[type]:
    """The classes whose ``hook_name`` implementation Kedro calls, in calling order."""
    manager = _create_hook_manager()
    _register_hooks(manager, settings.HOOKS)
    caller = getattr(manager.hook, hook_name)
    # pluggy calls implementations from the last registered to the first
    return [type(impl.plugin) for impl in reversed(caller.get_hookimpls())]


def test_the_mlflow_run_is_open_before_run_inputs_are_recorded():
    assert call_order("before_pipeline_run") == [LazyMlflowHook, MlflowRunInputsHooks]


def test_params_are_checked_when_the_context_is_created():
    assert call_order("after_context_created") == [LazyMlflowHook, RunParamsHooks]


def test_only_the_mlflow_hook_acts_after_a_training_run_besides_the_inputs_note():
    # registry bookkeeping is not a separate hook whose order could skip it: the MLflow hook
    # logs the model, then tags and aliases the version it registered, then ends the run; the
    # run's description (inputs hook) is set first, while the run is still open
    assert call_order("after_pipeline_run") == [MlflowRunInputsHooks, LazyMlflowHook]
    assert settings.DISABLE_HOOKS_FOR_PLUGINS == ("kedro_mlflow",)

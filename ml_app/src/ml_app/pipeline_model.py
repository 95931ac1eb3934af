"""The pipeline model as it is logged: kedro-mlflow's KedroPipelineModel with a lean ``predict``.

``KedroPipelineModel.predict`` deep-copies its loaded catalog on every call (our fitted classifier
alone takes ~4.6 ms to copy), builds a runner with its hook manager and logs an INFO line per node.
That is right for a batch, and most of the cost of a one-row request.

:class:`LeanPipelineModel` keeps everything else: the same Kedro inference pipeline is the single
definition of inference, the same artifacts are logged, the same ``load_context`` loads them, and
the model loads with ``mlflow.pyfunc.load_model`` and serves with ``mlflow models serve``. Only
``predict`` changes: it runs the pipeline's nodes in topological order over the artifacts loaded
once, with no copy, no runner and no logging. Predict-time ``params`` (e.g. another runner) take
kedro-mlflow's own path.

:meth:`LeanPipelineModel.predict_validated` is the documented fast path for a caller that has
already validated its rows against the same contract (the decision service does, once per
request): it runs the nodes downstream of ``valid_instances`` only, skipping both the model's own
contract check and MLflow's signature enforcement (the contract is stricter than the signature).

:class:`ml_app.mlflow_hook.TrainingMlflowHook` logs this class at the end of a training run.
"""

from __future__ import annotations

from typing import Any

from kedro_mlflow.mlflow import KedroPipelineModel

# the inference pipeline's contract-valid instances (ml_app.pipelines.inference.pipeline.VALIDATED;
# a literal, so that a model bundle's class does not depend on a module it may not ship)
VALIDATED = "valid_instances"


class LeanPipelineModel(KedroPipelineModel):
    """A KedroPipelineModel whose ``predict`` runs the inference nodes directly.

    Nodes are called with their inputs in declaration order, which is how this project declares
    them (lists of dataset names); tests check that outputs equal KedroPipelineModel's.
    """

    def load_context(self, context) -> None:
        super().load_context(context)
        self._artifacts = {
            name: self.loaded_catalog.load(name)
            for name in self.pipeline.inputs()
            if name != self.input_name
        }
        self._nodes = self.pipeline.nodes  # topologically sorted
        validated = VALIDATED in self.pipeline.datasets()
        self._validated_nodes = (
            self.pipeline.from_inputs(VALIDATED).nodes if validated else self._nodes
        )
        self._validated_input = VALIDATED if validated else self.input_name

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> Any:
        if params:
            return super().predict(context, model_input, params)
        return self._run(self._nodes, self.input_name, model_input)

    def predict_validated(self, valid_instances: Any) -> Any:
        """Scores of rows the caller has validated against the TransactionInstance contract.

        The same nodes as :meth:`predict` minus ``validate_instances``; call it on the output
        of ``FastContract(TransactionInstance).validate`` (coerced types), never on raw input.
        """
        return self._run(self._validated_nodes, self._validated_input, valid_instances)

    def _run(self, nodes: list, input_name: str, model_input: Any) -> Any:
        data = {**self._artifacts, input_name: model_input}
        for node in nodes:
            result = node.func(*(data[name] for name in node.inputs))
            outputs = node.outputs
            data.update(zip(outputs, result if len(outputs) > 1 else (result,), strict=True))
        return data[self.output_name]

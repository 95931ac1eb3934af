"""Training and inference share their preprocessing through tags; the PipelineML stands alone."""

from kedro_mlflow.pipeline.pipeline_ml import PipelineML

from ml_app.pipeline_registry import register_pipelines

SHARED = {"validate_instances", "predict_scores"}


def test_inference_nodes_are_the_training_nodes_tagged_inference():
    pipelines = register_pipelines()
    training, inference = pipelines["training"], pipelines["inference"]
    assert isinstance(training, PipelineML)
    assert {n.name for n in inference.nodes} == SHARED
    training_nodes = {n.name: n for n in training.nodes}
    for node in inference.nodes:
        assert training_nodes[node.name] is node or training_nodes[node.name] == node
        assert {"training", "inference"} <= node.tags
    training_only = set(training_nodes) - SHARED
    assert {
        "split_by_time",
        "fit_preprocessor",
        "build_model_input",
        "fit_classifier",
        "compile_model",
        "evaluate_model",
    } <= training_only
    assert all("inference" not in training_nodes[n].tags for n in training_only)


def test_the_pipeline_model_takes_instances_and_returns_scores():
    training = register_pipelines()["training"]
    assert training.input_name == "instances"
    # the compiled model is the only fitted artifact served (a persisted dataset, logged with it)
    assert training.inference.inputs() == {"instances", "compiled_model"}
    assert training.inference.outputs() == {"scores"}


def test_default_is_the_pipeline_ml_itself_never_a_sum():
    pipelines = register_pipelines()
    assert pipelines["__default__"] is pipelines["training"]

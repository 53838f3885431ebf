"""The container entrypoint of every task: TFX's KFP v2 executor runner, fed either launcher.

``python -m tfx_metric_learning.kubeflow.entrypoint`` takes TFX's own arguments
(``--executor_class_path``, ``--json_serialized_invocation_args`` = the ``ExecutorInput``,
``--json_serialized_inputs_spec_args`` = the component's input definitions, then Beam
arguments) and runs TFX's ``kubeflow_v2_run_executor`` on them, after making the
``ExecutorInput`` one that runner reads correctly whichever backend wrote it (``normalise``).

What the open-source Kubeflow Pipelines launcher writes differs from Vertex AI's
(kubeflow/pipelines ``backend/src/v2``, read at commit 7b70c7b of 2026-08-21):

- an input artifact produced by an upstream task has an *empty* type: the driver rebuilds it
  from ML Metadata with ``OutputArtifact{Schema: ""}`` ("TODO(Bobgy): figure out how to get
  schema", ``metadata/client.go`` ``GetOutputArtifactsByExecutionId``) and
  ``ToRuntimeArtifact`` sets ``instanceSchema`` to that empty string; TFX's runner would
  then fail to import the artifact class (``yaml.safe_load("")`` is None). The type is taken
  from the component's input definitions, which the compiled arguments carry;
- artifact names are ML Metadata's integer ids (``metadata/converter.go`` ``toRuntimeArtifact``:
  ``strconv.FormatInt(artifact.GetId(), 10)``), an output's name is its output key
  (``driver/driver.go`` ``provisionOutputs``), and metadata carries the launcher's own
  ``display_name`` and ``store_session_info``: TFX's runner takes these as they are;
- input artifacts are downloaded to local paths before the task and outputs uploaded from
  local paths after it (``component/launcher_v2.go`` ``downloadArtifacts``,
  ``uploadOutputArtifacts``, ``LocalPathForURI``: ``gs://b/k`` -> ``/gcs/b/k``, ``minio://``
  -> ``/minio/``, ``s3://`` -> ``/s3/``). For a scheme TensorFlow has no filesystem for
  (``minio://``, ``s3://`` in TF 2.16), the task reads and writes those local paths instead
  of the URIs, and the executor output names the URIs again, so the launcher uploads the
  outputs and records the URIs;
- the executor output file is a local path (``/gcs/.../output_metadata.json``, or
  ``/tmp/kfp_outputs/output_metadata.json``), which TFX's runner writes as it is.

Vertex AI writes resource names, full types and ``gs://`` URIs TensorFlow reads directly, so
``normalise`` changes nothing there.
"""

from __future__ import annotations

import json
from typing import Any

from tfx_metric_learning.pipeline.paths import tensorflow_reads

# the local path the open-source launcher gives each object-store scheme (LocalPathForURI)
LAUNCHER_LOCAL_PREFIX = {"gs://": "/gcs/", "minio://": "/minio/", "s3://": "/s3/"}


def local_path(uri: str) -> str | None:
    """Where the open-source launcher keeps ``uri`` inside the pod (None: not an object store)."""
    for scheme, prefix in LAUNCHER_LOCAL_PREFIX.items():
        if uri.startswith(scheme):
            return prefix + uri[len(scheme) :]
    return None


def _artifact_types(inputs_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: definition["artifactType"]
        for key, definition in (inputs_spec.get("artifacts") or {}).items()
        if definition.get("artifactType")
    }


def _has_type(artifact_type: dict[str, Any] | None) -> bool:
    if not artifact_type:
        return False
    return bool(
        artifact_type.get("schemaTitle") or (artifact_type.get("instanceSchema") or "").strip()
    )


def normalise(
    executor_input: dict[str, Any], inputs_spec: dict[str, Any], reads=tensorflow_reads
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(executor input TFX's runner reads, {local path: URI} to map back in the output)``.

    Input artifacts without a type get their input definition's; artifact URIs TensorFlow
    cannot open (``reads``) become the launcher's local paths. Nothing else changes.
    """
    out = json.loads(json.dumps(executor_input))
    types = _artifact_types(inputs_spec)
    mapped: dict[str, str] = {}
    for key, listing in (out.get("inputs", {}).get("artifacts") or {}).items():
        for artifact in listing.get("artifacts") or []:
            if not _has_type(artifact.get("type")):
                if key not in types:
                    raise ValueError(
                        f"input artifact {key!r} arrived without a type and the component's "
                        f"input definitions name none"
                    )
                artifact["type"] = types[key]
    for section in ("inputs", "outputs"):
        for listing in (out.get(section, {}).get("artifacts") or {}).values():
            for artifact in listing.get("artifacts") or []:
                uri = artifact.get("uri", "")
                local = local_path(uri)
                if uri and local and not reads(uri):
                    artifact["uri"] = local
                    mapped[local] = uri
    return out, mapped


def restore_uris(executor_output: dict[str, Any], mapped: dict[str, str]) -> dict[str, Any]:
    """The executor output with the URIs ``normalise`` replaced by local paths put back."""
    for listing in (executor_output.get("artifacts") or {}).values():
        for artifact in listing.get("artifacts") or []:
            uri = artifact.get("uri", "")
            if uri in mapped:
                artifact["uri"] = mapped[uri]
    return executor_output


def run(args, beam_args: list[str]) -> None:
    """Normalises the executor input of TFX's parsed ``args``, runs TFX's runner, maps URIs back."""
    from tfx.dsl.io import fileio
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_runner

    inputs_spec = json.loads(getattr(args, "json_serialized_inputs_spec_args", None) or "{}")
    executor_input, mapped = normalise(
        json.loads(args.json_serialized_invocation_args), inputs_spec
    )
    args.json_serialized_invocation_args = json.dumps(executor_input)
    tfx_runner._run_executor(args, beam_args)  # noqa: SLF001 - what TFX's entrypoint calls
    if mapped:
        output_file = executor_input["outputs"]["outputFile"]
        with fileio.open(output_file, "r") as f:
            executor_output = json.loads(f.read())
        with fileio.open(output_file, "w") as f:
            f.write(json.dumps(restore_uris(executor_output, mapped)))


def _parse_flags(argv: list[str]):
    """TFX's own flag parser (``argv`` without the program name), absl flags included."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_runner

    return tfx_runner._parse_flags(argv[1:])  # noqa: SLF001 - TFX's flags, unchanged


if __name__ == "__main__":
    from absl import app

    app.run(lambda parsed: run(*parsed), flags_parser=_parse_flags)

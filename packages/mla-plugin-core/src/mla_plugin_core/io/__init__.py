"""Layer 4, what a trainer writes and reads: atomic checkpoints and the strict ``--resume``
(:mod:`.checkpoint`, :mod:`.resume`), the ONNX export (:mod:`.onnx_export`) and the check of
an ONNX against the rules Unity's ML-Agents applies when it loads one (:mod:`.model_check`).
Imports :mod:`mla_plugin_core.util`."""

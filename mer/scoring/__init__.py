"""Scoring recordings: spotting candidate intervals (``spotting``), planning and cutting clips per
video (``pipeline``), loading eager / TorchScript / ONNX models (``models``) and writing resumable
result tables (``outputs``). The command is :mod:`mer.score`."""

"""Sensors: new landing files, reporting deadlines, run/check failure alerts. Every
`SensorDefinition` found in a module here is registered by
`kolab_pipeline/orchestration/definitions.py`."""

"""Website callback requests: a visitor leaves a number, the PBX rings the operator queue and
then the visitor (docs/callbacks.md).

:mod:`.intake` reads the typed number; :mod:`.requests` accepts, schedules or refuses a request
(:func:`create_request`, :func:`widget_config`); :mod:`.settings` a project's settings;
:mod:`.schedule` the weekly opening hours.
"""
from calltracking.callbacks.requests import RequestOutcome, create_request, widget_config

__all__ = ["RequestOutcome", "create_request", "widget_config"]

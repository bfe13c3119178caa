"""Configuration: defaults < INI file < environment < command line.

This package is the only code that reads ``config.ini``. Every value is typed and
validated here; an error names the file, the section and the key.

The file is ``/etc/calltracking/config.ini`` unless ``CALLTRACKING_CONFIG``
points elsewhere. A single value can be overridden with
``CALLTRACKING_<SECTION>_<KEY>`` (upper case), e.g.
``CALLTRACKING_DATABASE_URL``.

* ``options``: :func:`opt` (how a key is declared), the converters that check a value, and
  :class:`ConfigError`;
* ``general``, ``telephony``, ``web``, ``notify``, ``transcripts``: the sections, one dataclass each;
* ``loader``: :class:`Config` (every section) and :func:`load_config`.

Import from here: ``from calltracking.config import load_config, Config, ConfigError``.
"""
from calltracking.config.general import DatabaseConfig, GeneralConfig, LogConfig
from calltracking.config.loader import (DEFAULT_CONFIG_PATH, ENV_CONFIG, ENV_PREFIX, SECTIONS, Config,
                                        load_config)
from calltracking.config.notify import NotifyConfig
from calltracking.config.options import ConfigError, opt
from calltracking.config.telephony import AgiConfig, AmiConfig, AsteriskConfig, RecordingsConfig
from calltracking.config.transcripts import TranscriptsConfig
from calltracking.config.web import EXAMPLE_SECRET_KEY, DniConfig, WebConfig

__all__ = [
    "DEFAULT_CONFIG_PATH", "ENV_CONFIG", "ENV_PREFIX", "EXAMPLE_SECRET_KEY", "SECTIONS",
    "AgiConfig", "AmiConfig", "AsteriskConfig", "Config", "ConfigError", "DatabaseConfig", "DniConfig",
    "GeneralConfig", "LogConfig", "NotifyConfig", "RecordingsConfig", "TranscriptsConfig", "WebConfig", "load_config", "opt",
]

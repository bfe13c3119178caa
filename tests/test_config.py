import pytest

from calltracking.config import EXAMPLE_SECRET_KEY, ConfigError, load_config


def write(tmp_path, text):
    p = tmp_path / "config.ini"
    p.write_text(text)
    return p


def test_defaults_without_file(tmp_path):
    cfg = load_config(tmp_path / "missing.ini", env={}, require_file=False)
    assert cfg.agi.listen == ("127.0.0.1", 4573)
    assert cfg.ami.host == "127.0.0.1"
    assert cfg.agi.timeout_ms == 300
    assert cfg.web.secret_key == ""


def test_layering_file_env_cli(tmp_path):
    p = write(tmp_path, "[agi]\ntimeout_ms = 500\nlisten = 127.0.0.1:5000\n[general]\ntimezone = Europe/Moscow\n")
    cfg = load_config(p, env={"CALLTRACKING_AGI_TIMEOUT_MS": "700"})
    assert cfg.agi.timeout_ms == 700          # environment beats file
    assert cfg.agi.listen == ("127.0.0.1", 5000)  # file beats default
    assert cfg.general.timezone == "Europe/Moscow"
    cfg = load_config(p, env={"CALLTRACKING_AGI_TIMEOUT_MS": "700"}, overrides={"agi.timeout_ms": "900"})
    assert cfg.agi.timeout_ms == 900          # command line beats environment
    assert cfg.origins["agi.timeout_ms"] == "command line"


def test_config_env_var_names_file(tmp_path):
    p = write(tmp_path, "[general]\npbx_id = pbx-7\n")
    cfg = load_config(env={"CALLTRACKING_CONFIG": str(p)})
    assert cfg.general.pbx_id == "pbx-7"
    with pytest.raises(ConfigError, match="not found"):
        load_config(env={"CALLTRACKING_CONFIG": str(tmp_path / "nope.ini")})


@pytest.mark.parametrize("text,section,key,fragment", [
    ("[agi]\ntimeout_ms = fast\n", "agi", "timeout_ms", "expected an integer, got 'fast'"),
    ("[agi]\nlisten = localhost\n", "agi", "listen", "HOST:PORT"),
    ("[general]\ntimezone = Mars/Olympus\n", "general", "timezone", "unknown time zone"),
    ("[database]\nurl = mysql://x\n", "database", "url", "sqlite"),
    ("[ami]\nport = 70000\n", "ami", "port", "<= 65535"),
    ("[web]\nsecure_cookies = maybe\n", "web", "secure_cookies", "yes/no"),
    ("[web]\nsecrt_key = x\n", "web", "secrt_key", "unknown key"),
    ("[wbe]\nsecret_key = x\n", "wbe", "-", "unknown section"),
])
def test_errors_name_file_section_key(tmp_path, text, section, key, fragment):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    msg = str(e.value)
    assert msg.startswith(f"{p}: [{section}] {key}:"), msg
    assert fragment in msg


def test_env_error_names_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"environment CALLTRACKING_AGI_TIMEOUT_MS: \[agi\] timeout_ms"):
        load_config(tmp_path / "x.ini", env={"CALLTRACKING_AGI_TIMEOUT_MS": "-5"}, require_file=False)


def test_secrets_have_no_working_defaults(tmp_path):
    cfg = load_config(tmp_path / "x.ini", env={}, require_file=False)
    with pytest.raises(ConfigError, match=r"\[web\] secret_key: is empty"):
        cfg.require_web_secret()
    with pytest.raises(ConfigError, match=r"\[ami\] secret: is empty"):
        cfg.require_ami_secret()


def test_example_config_loads_but_secret_refused():
    from pathlib import Path

    example = Path(__file__).resolve().parent.parent / "config.example.ini"
    cfg = load_config(example, env={})
    assert cfg.web.secret_key == EXAMPLE_SECRET_KEY
    with pytest.raises(ConfigError, match="example value"):
        cfg.require_web_secret()
    good = load_config(example, env={"CALLTRACKING_WEB_SECRET_KEY": "x" * 40, "CALLTRACKING_AMI_SECRET": "s3cr3t"})
    assert good.require_web_secret() == "x" * 40
    assert good.require_ami_secret() == "s3cr3t"
    assert good.as_dict()["ami"]["secret"] == "********"

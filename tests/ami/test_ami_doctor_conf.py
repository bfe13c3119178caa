"""doctor's reader of Asterisk's configuration files (manager.conf and its includes) and of
``read =``, as Asterisk 22 reads them (the live test compares both with `manager show user`)."""
import pytest

from ami_listener.asterisk_conf import read_asterisk_conf
from ami_listener.doctor import read_classes


def write(d, **files):
    for name, text in files.items():
        (d / name.replace("__", ".")).write_text(text)
    return d


def test_includes_templates_and_comments(tmp_path):
    write(tmp_path, manager__conf=(
        "[general]\nenabled = yes ; trailing comment\ntimestampevents=yes\n"
        ";-- a block comment\n[ghost]\nread = all\n--;\n"
        "#include manager_calltracking.conf\n#tryinclude absent.conf\n#include \"conf.d/*.conf\"\n"
        "[tpl](!)\nread = call,agent\n[child](tpl)\nsecret = x\n[child2](tpl)\nread=cdr\n"
        "[Child3]\nread = call\n[Child3](+)\nread => dialplan\nsecret = a\\;b\n"),
        manager_calltracking__conf="[calltracking]\nsecret = s\nread = call,cdr,agent,user,dialplan\n")
    (tmp_path / "conf.d").mkdir()
    write(tmp_path / "conf.d", extra__conf="[extra]\nread = system\n")
    conf = read_asterisk_conf(str(tmp_path / "manager.conf"))
    assert conf.value(conf.find("general"), "timestampevents") == "yes"
    assert conf.value(conf.find("general"), "enabled") == "yes"
    assert conf.find("ghost") is None                                  # inside the block comment
    assert conf.find("CallTracking") == "calltracking"                 # Asterisk's users: any case
    assert conf.files["calltracking"] == str(tmp_path / "manager_calltracking.conf")
    assert conf.value("calltracking", "read") == "call,cdr,agent,user,dialplan"
    assert conf.value(conf.find("extra"), "read") == "system"          # a glob include
    assert conf.find("tpl") is None                                    # a template is no user
    assert conf.value("child", "read") == "call,agent"                 # inherited
    assert conf.value("child2", "read") == "cdr"                       # the last one wins
    assert conf.value("Child3", "read") == "dialplan" and conf.value("Child3", "secret") == "a;b"


def test_a_missing_include_is_an_error_and_a_loop_ends(tmp_path):
    write(tmp_path, manager__conf="[general]\n#include nowhere.conf\n")
    with pytest.raises(OSError) as e:
        read_asterisk_conf(str(tmp_path / "manager.conf"))
    assert e.value.filename == str(tmp_path / "nowhere.conf")
    with pytest.raises(FileNotFoundError):
        read_asterisk_conf(str(tmp_path / "absent.conf"))
    write(tmp_path, manager__conf="[general]\n#include a.conf\n", a__conf="[a]\nread=call\n#include a.conf\n")
    assert read_asterisk_conf(str(tmp_path / "manager.conf")).value("a", "read") == "call"


@pytest.mark.parametrize("value, granted", [
    ("call,cdr,agent,user,dialplan", {"call", "cdr", "agent", "dialplan"}),
    ("call, cdr ,agent", {"call", "agent"}),          # Asterisk 22.10.1: "read perm: call,agent"
    ("Call,CDR", set()),                              # "read perm: <none>"
    ("system", set()),
    ("all", {"call", "cdr", "agent", "dialplan"}),
    (None, set()),                                    # no read line: "<none>"
])
def test_read_classes_as_asterisk_reads_them(value, granted):
    assert read_classes(value) & {"call", "cdr", "agent", "dialplan"} == granted

"""``driver check`` and ``driver new``: exit codes 0 ok, 1 does not load, 2 usage error."""

from __future__ import annotations

import argparse

import pytest

from isthmus.drivers.cli import CHECK_ORIGIN, add_subcommands, main


def test_check_an_entry_point_infers_its_kind(capsys):
    assert main(["driver", "check", "noop"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: device driver 'noop' "
                          "(isthmus.drivers.device.noop:NoopDeviceDriver) loads")
    assert main(["driver", "check", "ipsec"]) == 0
    assert "ok: service driver 'ipsec'" in capsys.readouterr().out


def test_check_a_dotted_path_infers_the_kind_from_the_base(capsys):
    assert main(["driver", "check", "isthmus.drivers.service.ipsec.IPsecServiceDriver"]) == 0
    assert "ok: service driver" in capsys.readouterr().out


def test_check_with_the_wrong_kind_prints_the_loader_message(capsys):
    assert main(["driver", "check", "noop", "--kind", "service"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Cannot load service driver 'noop'")
    assert f"from:  {CHECK_ORIGIN}" in err
    assert "configure 'noop' with [vpnagent] vpn_device_driver" in err


def test_check_a_class_of_neither_kind(capsys):
    assert main(["driver", "check", "collections:OrderedDict"]) == 1
    err = capsys.readouterr().err
    assert "neither a service driver nor a device driver" in err
    assert "--kind service|device" in err


def test_check_an_unknown_name_lists_both_groups(capsys):
    assert main(["driver", "check", "nothing-here"]) == 1
    err = capsys.readouterr().err
    assert "isthmus.vpn.service_drivers: ipsec, strongswan; isthmus.vpn.device_drivers: noop, strongswan" in err


def test_check_usage_errors_exit_2(capsys):
    assert main(["driver", "check"]) == 2
    assert main(["driver", "check", "noop", "--kind", "agent"]) == 2
    assert "invalid choice: 'agent'" in capsys.readouterr().err


def test_new_writes_the_package(tmp_path, capsys):
    assert main(["driver", "new", "acme-vpn", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "acme-vpn"
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "src/acme_vpn/__init__.py", "src/acme_vpn/device.py",
        "src/acme_vpn/service.py", "tests/test_acme_vpn.py"]
    out = capsys.readouterr().out
    assert "service_provider = VPN:acme_vpn:acme-vpn:default" in out
    assert "vpn_device_driver = acme-vpn" in out


@pytest.mark.parametrize("name, expected", [
    ("1acme", "not a usable driver name: its package name '1acme' must be a Python identifier"),
    ("acme vpn", "its package name 'acme vpn' must be a Python identifier"),
    ("class", "not a keyword"),
    ("json", "a module named 'json' already exists (the standard library)"),
    ("isthmus", "a module named 'isthmus' already exists"),
])
def test_new_refuses_bad_names(tmp_path, capsys, name, expected):
    assert main(["driver", "new", name, "--dir", str(tmp_path)]) == 2
    assert expected in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_new_refuses_an_existing_non_empty_directory(tmp_path, capsys):
    (tmp_path / "acme-vpn").mkdir()
    (tmp_path / "acme-vpn" / "notes.txt").write_text("mine")
    assert main(["driver", "new", "acme-vpn", "--dir", str(tmp_path)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "acme-vpn").iterdir()] == ["notes.txt"]


def test_new_accepts_an_existing_empty_directory(tmp_path):
    (tmp_path / "acme").mkdir()
    assert main(["driver", "new", "acme", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "acme" / "src" / "acme" / "device.py").is_file()


def test_add_subcommands_plugs_into_another_parser():
    top = argparse.ArgumentParser(prog="isthmus")
    sub = top.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    args = top.parse_args(["driver", "check", "noop", "--kind", "device"])
    assert (args.spec, args.kind) == ("noop", "device")
    assert args.func(args) == 0

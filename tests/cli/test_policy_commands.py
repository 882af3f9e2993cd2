"""The policy as an operator meets it: generated sample, effective policy, broken files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from isthmus.api.policy import list_rules
from tests.cli.test_commands import ISTHMUS, ROOT

BIN = Path(sys.executable).parent


def _config_dir(tmp_path: Path, policy_yaml: str | None, policy_file: str = "policy.yaml") -> Path:
    (tmp_path / "isthmus.conf").write_text(
        f"[DEFAULT]\nstate_path = {tmp_path}/state\n[oslo_policy]\npolicy_file = {policy_file}\n")
    if policy_yaml is not None:
        (tmp_path / "policy.yaml").write_text(policy_yaml)
    return tmp_path / "isthmus.conf"


def test_sample_policy_is_generated_not_hand_kept(tmp_path):
    out = tmp_path / "policy.yaml.sample"
    subprocess.run([str(BIN / "oslopolicy-sample-generator"), "--config-file",
                    str(ROOT / "etc/oslo-policy-generator/isthmus.conf"),
                    "--output-file", str(out)], check=True, cwd=ROOT, capture_output=True)
    assert out.read_text() == (ROOT / "etc/policy.yaml.sample").read_text(), \
        "etc/policy.yaml.sample is stale: run oslopolicy-sample-generator " \
        "--config-file etc/oslo-policy-generator/isthmus.conf"


def test_policy_generator_shows_the_effective_policy(tmp_path):
    conf = _config_dir(tmp_path, 'get_ikepolicy: "rule:admin_only"\n')
    result = subprocess.run([str(BIN / "oslopolicy-policy-generator"), "--namespace", "isthmus",
                             "--config-file", str(conf)], capture_output=True, text=True,
                            check=True, timeout=60)
    assert '"get_ikepolicy": "rule:admin_only"' in result.stdout
    assert '"create_ikepolicy": "(rule:admin_only) or (role:member and ' \
           'project_id:%(project_id)s)"' in result.stdout


@pytest.mark.parametrize("policy_yaml,policy_file,expected", [
    ("get_ikepolicy: [unclosed\n", "policy.yaml", "cannot be read as YAML"),
    ("- get_ikepolicy\n", "policy.yaml", "expected a mapping of rule name to check string"),
    ("get_ikepolicy: 5\n", "policy.yaml", "rule 'get_ikepolicy' must be a check string"),
    ('get_ikepolicy: "rule:admin_only or"\n', "policy.yaml",
     "rule 'get_ikepolicy': cannot parse 'rule:admin_only or'"),
    ('get_ikepolicy: "rule:no_such_rule"\n', "policy.yaml", "no_such_rule"),
    (None, "missing.yaml", "'missing.yaml' was not found"),
])
def test_broken_policy_file_stops_the_start_naming_it(tmp_path, policy_yaml, policy_file,
                                                      expected):
    conf = _config_dir(tmp_path, policy_yaml, policy_file)
    result = subprocess.run([ISTHMUS, "server", "--config-file", str(conf)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert expected in result.stderr, result.stderr
    if policy_yaml is not None:
        assert f"policy file {tmp_path / 'policy.yaml'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_docs_list_every_rule_with_its_default():
    docs = (ROOT / "docs/api.md").read_text()

    def row(name: str, check: str) -> str:
        return "| `%s` | `%s` |" % (name, check.replace("|", "\\|") or '""')
    missing = [r.name for r in list_rules() if row(r.name, r.check_str) not in docs]
    assert not missing, f"docs/api.md (section Policy) lacks or misstates: {missing}"

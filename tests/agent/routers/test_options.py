"""[vpnagent] physical_networks and router_namespace_prefix."""

from __future__ import annotations

import pytest
from oslo_config import cfg

from isthmus import config
from isthmus.agent.routers import options


def test_physical_networks_parse():
    assert options.parse_physical_networks(["public:br-ex", " lan : br-lan "]) == {
        "public": "br-ex", "lan": "br-lan"}


@pytest.mark.parametrize("entries", [["public"], ["public:"], [":br-ex"], ["a:b", "a:c"]])
def test_bad_physical_networks_name_the_option(entries):
    with pytest.raises(options.BadPhysicalNetworks, match="physical_networks"):
        options.parse_physical_networks(entries)


def test_options_read_from_a_file(tmp_path):
    path = tmp_path / "agent.conf"
    path.write_text("[vpnagent]\nphysical_networks = public:br-ex,lan:br-lan\n"
                    "router_namespace_prefix = isthmus-b-\n")
    conf = cfg.ConfigOpts()
    config.register_opts(conf)
    conf(args=["--config-file", str(path)])
    assert options.parse_physical_networks(conf.vpnagent.physical_networks) == {
        "public": "br-ex", "lan": "br-lan"}
    assert conf.vpnagent.router_namespace_prefix == "isthmus-b-"

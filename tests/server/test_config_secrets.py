"""``log_opt_values`` (what oslo services print at start with debug on) masks every password.

The configuration is built as the server builds it: Isthmus's options, all of
oslo.messaging's, and keystonemiddleware's with the password plugin loaded.
"""

from __future__ import annotations

import logging

from keystoneauth1 import loading

from isthmus import config
from isthmus.api import with_keystone
from isthmus.rpc.transport import register_opts
from tests.leaks import canary, every_log_line, leaks


def test_log_opt_values_prints_no_password(tmp_path):
    secrets = {name: canary(name) for name in (
        "rabbit", "database", "keystone", "memcache", "kafka", "cache")}
    path = tmp_path / "isthmus.conf"
    path.write_text(
        "[DEFAULT]\n"
        f"transport_url = rabbit://isthmus:{secrets['rabbit']}@127.0.0.1:5672/\n"
        "auth_strategy = keystone\n"
        "[database]\n"
        f"connection = postgresql+psycopg://isthmus:{secrets['database']}@127.0.0.1/isthmus\n"
        "[keystone_authtoken]\n"
        "auth_type = password\n"
        "auth_url = http://127.0.0.1:5000/\n"
        "username = isthmus\n"
        f"password = {secrets['keystone']}\n"
        "memcache_security_strategy = ENCRYPT\n"
        f"memcache_secret_key = {secrets['memcache']}\n"
        "[oslo_messaging_kafka]\n"
        f"ssl_client_key_password = {secrets['kafka']}\n"
        "[cache]\n"
        f"memcache_password = {secrets['cache']}\n")
    conf = config.load([], [str(path)])
    register_opts(conf)
    with_keystone(lambda environ, start_response: [], conf)
    loading.load_auth_from_conf_options(conf, "keystone_authtoken")  # as on its first request
    assert conf.keystone_authtoken.password == secrets["keystone"]
    assert conf.oslo_messaging_kafka.ssl_client_key_password == secrets["kafka"]

    with every_log_line() as lines:
        conf.log_opt_values(logging.getLogger("isthmus.config"), logging.DEBUG)
    assert any("keystone_authtoken.password" in line for line in lines)
    assert not leaks(secrets.values(), "\n".join(lines)), "log_opt_values printed a password"

from tests.agent.conftest import admin, embedded, member, topo  # noqa: F401  (shared fixtures)

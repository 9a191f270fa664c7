import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from _coordinator import FakeCoordinator  # noqa: E402

from hyperopt_runner import _connection, _driver  # noqa: E402


@pytest.fixture
def coordinator(monkeypatch):
    """Makes in-test coordinators and points this process's driver connection at the last one."""
    for name in (_connection.ENV_ENDPOINT, _connection.ENV_TOKEN, _connection.ENV_RUN):
        monkeypatch.delenv(name, raising=False)
    made = []

    def make(token_sent=None, **options):
        fake = FakeCoordinator(**options)
        _connection.configure(fake.endpoint, token_sent or fake.token)
        _driver.reset_ordinals()
        made.append(fake)
        return fake

    yield make
    _connection.reset()
    for fake in made:
        fake.close()
        assert not fake.errors, "\n".join(fake.errors)

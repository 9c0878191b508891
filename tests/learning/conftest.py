"""The web pages' signed-in clients, for the tests of pages that show learned probabilities."""

from tests.web.conftest import client_for  # noqa: F401

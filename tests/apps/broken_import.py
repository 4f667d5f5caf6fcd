"""A module whose own import fails: the server must show this traceback and exit 3."""

import a_dependency_that_is_not_installed  # noqa: F401

app = None

def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "precommit: runs the real pre-commit tool (builds a hook env from PyPI; runs in CI)",
    )

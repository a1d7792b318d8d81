"""The browser suite reuses the integration harness (tests/integration/
conftest.py: a real nginx with the sanitizer-built module, a recording
backend, the CLI) under its own module name."""
import importlib.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_INTEGRATION = os.path.join(_HERE, "..", "integration")
sys.path.insert(0, _INTEGRATION)

_spec = importlib.util.spec_from_file_location(
    "gh_integration_conftest", os.path.join(_INTEGRATION, "conftest.py"))
harness = importlib.util.module_from_spec(_spec)
sys.modules["gh_integration_conftest"] = harness
_spec.loader.exec_module(harness)

# the fixtures this suite uses
gateway = harness.gateway
backend = harness.backend
_sanitizer_watch = harness._sanitizer_watch

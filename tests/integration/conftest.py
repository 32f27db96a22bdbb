from .fixtures_base import base_factory, base_store  # noqa: F401
from .fixtures_diff import diff_builds  # noqa: F401
from .fixtures_publish import registry  # noqa: F401
from .fixtures_runtime import cpython_source, runtime_factory, runtime_store  # noqa: F401
from .fixtures_verify import buildah_for_tests, good_amd64, good_layout  # noqa: F401

"""The plugin tests import ``photosearch_train`` and ``photosearch_conse`` from ``plugins/``."""

from tests.support.plugin_paths import add_plugins_to_path

add_plugins_to_path()

"""Test kits for plugin authors: checks a model plugin can run against its own bundles.

Nothing in the app imports this package (the layers contract in pyproject.toml keeps it so);
it depends on the public model API only, plus the app's own image preprocessing.
"""

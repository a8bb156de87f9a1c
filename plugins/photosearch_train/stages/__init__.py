"""The recipe's stages, one module each, every one a leaf: it builds on the workspace, the
shared phases and validation, never on another stage (``photosearch_train.api`` picks which
to run from its table). A stage returns a ``results.StageResult``; an export stage returns
the run's report.
"""

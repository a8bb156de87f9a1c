"""The `photosearch` command line: a front end, like photosearch.gui.

Owns: the commands (main); the `models` sub-commands (models_commands); text_commands;
duplicates_command; search_service.
Only the front ends print or exit: the core raises PhotosearchError subclasses and
they turn them into one-line messages. May import every core package; the GUI only
lazily, to open the window when `photosearch` runs without arguments.
"""

"""The generator's errors, importable without loading the generator (keeps `bimpl --help` fast)."""


class GenerateError(Exception):
    """A spec the generator cannot turn into a project (names the resource and field)."""


class OutputDirError(GenerateError):
    """The output directory cannot be used (not empty without force, or not a directory)."""

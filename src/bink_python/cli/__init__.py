"""The command line: the parser and the handlers over the stage packages."""

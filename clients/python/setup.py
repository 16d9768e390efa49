"""Generates the gRPC stubs from the repository's proto/ before the package is built."""
import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_stubs  # noqa: E402


class BuildWithStubs(build_py):
    def run(self) -> None:
        build_stubs.generate()
        super().run()


setup(cmdclass={"build_py": BuildWithStubs})

"""Builds flatlane._native with CMake (runtime/python/CMakeLists.txt, standalone mode), so pip
uses the same sources and flags as the project build. Metadata lives in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(
            [
                "cmake",
                "-S",
                str(HERE),
                "-B",
                str(build_dir),
                *generator,
                "-DCMAKE_BUILD_TYPE=Release",
                # The interpreter pip runs under (a venv's python included): the extension's ABI.
                f"-DPython_EXECUTABLE={sys.executable}",
                f"-DFLATLANE_PYTHON_OUTPUT_DIR={out_dir}",
            ],
            check=True,
        )
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "flatlane_native", "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("flatlane._native")], cmdclass={"build_ext": CMakeBuild})

"""The optional C extension (the HJ 212 CRC, see ecohub/protocol/hj212/crc.py); everything
else about the package is in pyproject.toml. Declared here rather than under
``[tool.setuptools.ext-modules]``, which setuptools still calls experimental and warns
about on every install."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ecohub.protocol.hj212._crc",
            sources=["ecohub/protocol/hj212/_crc.c"],
            optional=True,  # without a compiler the install goes on; the CRC runs in Python
        )
    ]
)

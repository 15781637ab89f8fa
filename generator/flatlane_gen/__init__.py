"""Flatlane's code generator: FlatBuffers schemas (parsed by flatc) to typed endpoints.

Pipeline: `frontend.load()` runs flatc for a binary schema (.bfbs), `bfbs.read()` decodes it,
`validate.validate()` checks Flatlane's rules and resolves channels, `lower` builds the IR types
(`ir`), and `typehash` gives each message type its 64-bit identity.
"""

__version__ = "0.1.0"
